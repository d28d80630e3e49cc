"""``lstmtext export``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from lstmtext.cli.console import err, friendly


def register(app: typer.Typer) -> None:
    @app.command("export")
    @friendly
    def export(
        model: Path = typer.Argument(..., help="Model bundle or training output directory."),
        output: Path = typer.Option(..., "--output", "-o", help="Where to write the export (replaced only "
                                    "by a complete result)."),
        format: str = typer.Option("bundle", "--format", "-f", help="bundle (a slim copy), litert (a copy with "
                                   "LiteRT parts for fast start) or savedmodel (TensorFlow Serving)."),
        dtype: Optional[str] = typer.Option(None, "--dtype", help="bundle: weight dtype, float32 or float16 "
                                            "(default: as the model stores them)."),
        quantize: Optional[str] = typer.Option(None, "--quantize", help="litert: none, float16 or dynamic "
                                               "(int8 weights); default: float16 for float16 bundles, else none."),
    ) -> None:
        """Export a model: a slim bundle, LiteRT parts, or a SavedModel."""
        from lstmtext.errors import UsageError
        from lstmtext.export import FORMATS, export_bundle, export_litert, export_savedmodel

        if format not in FORMATS:
            raise UsageError(f"--format must be one of {', '.join(FORMATS)}")
        if quantize is not None and format != "litert":
            raise UsageError("--quantize applies to --format litert")
        if dtype is not None and format != "bundle":
            raise UsageError("--dtype applies to --format bundle")
        if format == "bundle":
            r = export_bundle(model, output, dtype)
            err.print(f"wrote {r['output']} ({r['output_bytes'] / 1e6:.1f} MB, from {r['source_bytes'] / 1e6:.1f} MB)")
        elif format == "litert":
            r = export_litert(model, output, quantize)
            parts = ", ".join(f"{k} {v['bytes'] / 1e6:.1f} MB" for k, v in r["files"].items())
            err.print(f"wrote {r['output']}: LiteRT parts ({r['quantize']}) {parts}; weights.h5 "
                      f"{r['weights_bytes'] / 1e6:.1f} MB")
        else:
            r = export_savedmodel(model, output)
            err.print(f"wrote {r['output']} (SavedModel, signatures {', '.join(r['signatures'])}, "
                      f"{r['output_bytes'] / 1e6:.1f} MB)")

    @app.command("average")
    @friendly
    def average(
        models: List[Path] = typer.Argument(..., help="Two or more checkpoints of one model (bundles or "
                                            "training output directories)."),
        output: Path = typer.Option(..., "--output", "-o", help="Where to write the averaged bundle (replaced "
                                    "only by a complete result)."),
        dtype: Optional[str] = typer.Option(None, "--dtype", help="weight dtype, float32 or float16 "
                                            "(default: as the first model stores them)."),
    ) -> None:
        """Average the weights of checkpoints of one model (same vocabulary and shapes) into one bundle."""
        from lstmtext.export import average_bundles

        r = average_bundles(models, output, dtype)
        err.print(f"wrote {r['output']}: the mean of {r['models']} models ({r['dtype']}, "
                  f"{r['output_bytes'] / 1e6:.1f} MB)")
