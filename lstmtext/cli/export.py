"""``lstmtext export``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from lstmtext.cli.console import err, friendly, out, print_json


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

    @app.command("tune-cache")
    @friendly
    def tune_cache(
        model: Path = typer.Argument(..., help="A language model bundle (or training output directory)."),
        files: List[Path] = typer.Argument(..., help="Held-out text, one sentence or paragraph per line (not "
                                           "the training text)."),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write a copy with the settings "
                                              "here (default: update the model's config.json in place)."),
        max_tokens: int = typer.Option(200_000, "--max-tokens", help="Tune on at most this many tokens of "
                                       "the text."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Report the settings, write nothing."),
        encoding: str = typer.Option("utf-8", "--encoding"),
        json_: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Choose a language model's continuous cache on held-out text and store it in the bundle.

        The cache (Grave et al. 2017) mixes a probability for recently seen
        words into the network's, by how alike the current state is to the
        states those words followed; `evaluate` then uses it. The window,
        theta and lambda are chosen on the first half of the text and checked
        on the second; when the cache does not help there, it is stored off.
        """
        import dataclasses

        from lstmtext import bundle as bundle_io
        from lstmtext.errors import UsageError
        from lstmtext.lm import api as lm_api

        b = bundle_io.read(model)
        if b.task != "lm":
            raise UsageError(f"{model} is a {b.task} model: tune-cache is for language models")
        report = lm_api.tune_cache(b, [str(f) for f in files], encoding, max_tokens)
        settings = report["settings"]
        if json_:
            print_json({**{k: v for k, v in report.items() if k not in ("settings", "best", "grid")},
                        "settings": dataclasses.asdict(settings), "best": dataclasses.asdict(report["best"]),
                        "grid": [dict(zip(("perplexity", "window", "theta", "lambda"), g)) for g in report["grid"]]})
        else:
            from rich.table import Table

            t = Table("token perplexity", "without the cache", "with it")
            for key, name in (("tuning", "first half (tuning)"), ("held_out", "second half (held out)"),
                              ("whole", "whole text")):
                t.add_row(name, f"{report[key]['without']:.2f}", f"{report[key]['with']:.2f}")
            out.print(t)
            best = report["best"]
            out.print(f"best on the first half: window {best.window}, theta {best.theta}, lambda {best.lam} "
                      f"({report['tokens']:,} tokens, {report['seconds']:.0f} s)")
            if not report["helps"]:
                out.print("the cache did not lower the held-out half's perplexity: it is stored off (window 0)")
        if dry_run:
            return
        written = lm_api.write_cache_settings(b, settings, output)
        err.print(f"wrote {written / 'config.json'}: cache_window {settings.window}, cache_theta {settings.theta}, "
                  f"cache_lambda {settings.lam}")
