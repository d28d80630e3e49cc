"""``lstmtext data check``: statistics, problems and auto values of training data, before training."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from lstmtext.cli.console import err, friendly, out, print_json


def register(app: typer.Typer) -> None:
    @app.command("check")
    @friendly
    def check(
        task: str = typer.Argument(..., help="lm, ner (or tag) or translate."),
        files: List[Path] = typer.Argument(..., help="Training data: a text file (lm); CoNLL or JSONL files (ner); "
                                           "a TSV file or two line-aligned files, source then target (translate)."),
        valid: Optional[List[Path]] = typer.Option(None, "--valid", help="Validation data, in the same form "
                                                   "(repeat for two translation files)."),
        json_output: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
        encoding: str = typer.Option("utf-8", "--encoding", help="Encoding of the files."),
        word_column: int = typer.Option(1, "--word-column", help="ner: CoNLL word column (1-based)."),
        tag_column: int = typer.Option(-1, "--tag-column", help="ner: CoNLL tag column (negative: from the end)."),
    ) -> None:
        """Check training data: sizes, encoding and line problems, tag schemes, and the values auto would choose."""
        from lstmtext.datacheck import check as run

        report = run(task, list(files), list(valid or []), encoding, word_column, tag_column)
        if json_output:
            print_json(report)
            return
        _show(report)


def _show(report: dict) -> None:
    """The report for a terminal: statistics, auto values, then warnings (yellow)."""
    for role in ("train", "valid"):
        entry = report.get(role)
        if not entry:
            continue
        flat = {k: v for k, v in entry.items() if not isinstance(v, dict)}
        out.print(f"{role}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in flat.items()), markup=False)
        for k, v in entry.items():
            if isinstance(v, dict):
                out.print(f"  {k}: " + ", ".join(f"{kk} {_fmt(vv)}" for kk, vv in v.items()), markup=False)
    if report.get("auto"):
        out.print("auto values (what training would choose; --set KEY=VALUE overrides):", markup=False)
        width = max(len(k) for k in report["auto"])
        for key, c in report["auto"].items():
            out.print(f"  {key:<{width}} = {c['value']!s:<7} {c['reason']}", markup=False)
        if report.get("auto_note"):
            out.print(f"  ({report['auto_note']})", markup=False)
    warnings = report.get("warnings", [])
    for w in warnings:
        err.print(f"[yellow]warning:[/] {_escape(w)}", soft_wrap=True)
    if not warnings:
        err.print("no problems found", markup=False)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
