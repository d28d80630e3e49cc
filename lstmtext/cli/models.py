"""``lstmtext models`` and ``lstmtext package``: installed models and model packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer

from lstmtext.cli.console import err, friendly, out, print_json


SHORT = {"valid_perplexity": "ppl", "f1": "F1", "accuracy": "acc", "valid_bleu": "BLEU (greedy)",
         "valid_chrf": "chrF"}


def _metrics_text(metrics: dict) -> str:
    return ", ".join(f"{SHORT.get(k, k)} {v:.2f}" for k, v in metrics.items()) or "-"


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} kB"


def register(app: typer.Typer) -> None:
    @app.command("models")
    @friendly
    def models(json_: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
        """List the installed models: name, task, size, validation metrics, licence."""
        from lstmtext import packages

        rows = [packages.describe(m) for entries in sorted(packages.installed().items()) for m in entries[1]]
        if json_:
            print_json({"models": rows})
            return
        if not rows:
            err.print("no models installed; `lstmtext package BUNDLE --install` installs one")
            return
        from rich.table import Table

        from rich.table import Column

        table = Table(Column("name", no_wrap=True), "task", Column("size", no_wrap=True), "validation",
                      "licence", "version")
        for r in rows:
            table.add_row(r["name"], str(r["task"]), _size(r["bytes"]), _metrics_text(r["metrics"]),
                          r["licence"], r["version"])
        out.print(table)

    @app.command("package")
    @friendly
    def package(
        model: str = typer.Argument(..., help="Model bundle, training output directory or installed name."),
        output: Path = typer.Option(Path("dist"), "--output", "-o", help="Folder for the wheel."),
        name: Optional[str] = typer.Option(None, "--name", help="Model name after install (default: the "
                                           "bundle's folder name)."),
        version: str = typer.Option("1.0.0", "--version", help="Package version."),
        licence: Optional[str] = typer.Option(None, "--license", "--licence",
                                              help="Licence field (default: the bundle's, else 'unknown')."),
        install: bool = typer.Option(False, "--install", help="pip install the wheel into this Python "
                                     "afterwards."),
    ) -> None:
        """Build a pip-installable wheel of a model; `lstmtext predict NAME` then finds it anywhere."""
        from lstmtext.errors import LstmtextError
        from lstmtext.packages import build_wheel

        r = build_wheel(model, output, name=name, version=version, licence=licence)
        err.print(f"wrote {r['wheel']} ({r['bytes'] / 1e6:.1f} MB; model '{r['name']}', {r['task']}, "
                  f"licence: {r['licence']})")
        if install:
            done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                                   "--force-reinstall", "-q", r["wheel"]], capture_output=True, text=True)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
                raise LstmtextError(f"pip could not install {r['wheel']}: {last}")
            err.print(f"installed: `lstmtext predict {r['name']} ...` works from any folder")
