"""``lstmtext info`` and ``lstmtext config``."""

from __future__ import annotations

import importlib
from pathlib import Path

import typer

from lstmtext.cli.console import friendly, out, print_json

CONFIG_CLASSES = {
    "lm": ("lstmtext.lm.config", "LMConfig"),
    "ner": ("lstmtext.ner.config", "NERConfig"),
    "translate": ("lstmtext.translate.config", "TranslateConfig"),
}


def register(app: typer.Typer) -> None:
    @app.command("info")
    @friendly
    def info(
        model: Path = typer.Argument(..., help="Model bundle or training output directory."),
        json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Describe a model: task, architecture, size, tokenizer, data, metrics, versions."""
        from lstmtext import bundle as bundle_io
        from lstmtext.tasks import api

        from lstmtext.lite.runtime import MANIFEST

        b = bundle_io.read(model)
        result = api(b.task).info(b)
        manifest = b.json(MANIFEST)
        if isinstance(manifest, dict) and isinstance(manifest.get("files"), dict):
            result["lite"] = {"quantize": manifest.get("quantize"),
                              **{name: f"{f.get('file')} ({f.get('bytes', 0) / 1e6:.1f} MB)"
                                 for name, f in manifest["files"].items() if isinstance(f, dict)}}
        if json_:
            print_json(result)
            return
        from rich.table import Table

        table = Table(show_header=False, box=None)
        for key, value in result.items():
            if key == "config":
                continue
            if isinstance(value, dict):
                value = ", ".join(f"{k}={_fmt(v)}" for k, v in value.items() if not isinstance(v, (dict, list)))
            table.add_row(f"[bold]{key}[/]", str(value))
        out.print(table)

    @app.command("config")
    @friendly
    def config(task: str = typer.Argument(..., help="lm, ner (or tag) or translate.")) -> None:
        """Print a task's configuration keys with defaults and help, as TOML."""
        from lstmtext.config import describe
        from lstmtext.errors import UsageError
        from lstmtext.tasks import task_name

        task = task_name(task)
        if task not in CONFIG_CLASSES:
            raise UsageError(f"unknown task '{task}' (lm, ner, tag or translate)")
        module, name = CONFIG_CLASSES[task]
        cls = getattr(importlib.import_module(module), name)
        for key, tname, default, help_text in describe(cls):
            value = (repr(default).replace("'", '"') if isinstance(default, str)
                     else str(default).lower() if isinstance(default, bool) else default)
            out.print(f"# {help_text} ({tname})", markup=False)
            out.print(f"{key} = {value}", markup=False)


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else v
