"""``lstmtext export``."""

from __future__ import annotations

from pathlib import Path

import typer

from lstmtext.cli.console import err, friendly


def register(app: typer.Typer) -> None:
    @app.command("export")
    @friendly
    def export(
        model: Path = typer.Argument(..., help="Model bundle or training output directory."),
        output: Path = typer.Option(..., "--output", "-o", help="Where to write the export."),
        format: str = typer.Option("bundle", "--format", "-f", help="bundle"),
        dtype: str = typer.Option("float32", "--dtype", help="bundle: weight dtype, float32 or float16."),
    ) -> None:
        """Export a model (a slimmed bundle, optionally with float16 weights)."""
        from lstmtext.errors import UsageError
        from lstmtext.export import FORMATS, export_bundle

        if format not in FORMATS:
            raise UsageError(f"--format must be one of {', '.join(FORMATS)}")
        r = export_bundle(model, output, dtype)
        err.print(f"wrote {r['output']} ({r['output_bytes'] / 1e6:.1f} MB, from {r['source_bytes'] / 1e6:.1f} MB)")
