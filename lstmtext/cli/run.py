"""``lstmtext evaluate``, ``predict`` and ``generate``: they dispatch on the bundle's task."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator, List, Optional

import typer

from lstmtext.cli.console import err, friendly, out, print_json


def _input_lines(texts: list[str] | None, input: str | None, encoding: str) -> Iterator[str]:
    from lstmtext.errors import UsageError
    from lstmtext.io import iter_lines

    if texts and input:
        raise UsageError("give TEXT arguments or --input, not both")
    if texts:
        yield from texts
    elif input:
        for _, line in iter_lines(input, encoding):
            yield line
    elif not sys.stdin.isatty():
        for _, line in iter_lines("-", encoding):
            yield line
    else:
        raise UsageError("nothing to predict: give TEXT, --input FILE or pipe text to stdin")


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    @friendly
    def evaluate(
        model: Path = typer.Argument(..., help="Model bundle or training output directory."),
        files: Optional[List[Path]] = typer.Argument(None, help="Data to score (format of the task)."),
        json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Evaluation batch size."),
        encoding: str = typer.Option("utf-8", "--encoding"),
        source: Optional[Path] = typer.Option(None, "--source", help="translate: source side file."),
        target: Optional[Path] = typer.Option(None, "--target", help="translate: reference file."),
        beam: int = typer.Option(5, "--beam", help="translate: beam size."),
        word_column: Optional[int] = typer.Option(None, "--word-column", help="ner: word column (1-based)."),
        tag_column: Optional[int] = typer.Option(None, "--tag-column", help="ner: gold tag column (1-based)."),
        scheme: Optional[str] = typer.Option(None, "--scheme", help="ner: iob1, iob2 or bioes."),
    ) -> None:
        """Score a model on data: perplexity (lm), entity F1 (ner), BLEU/chrF (translate)."""
        from lstmtext import bundle as bundle_io
        from lstmtext.backend import load_keras
        from lstmtext.tasks import EvalOptions, api

        b = bundle_io.read(model)
        if b.task != "ner":  # the tagger evaluates with numpy, without TensorFlow
            load_keras()
        extra = {k: v for k, v in dict(source=source, target=target, beam=beam, word_column=word_column,
                                       tag_column=tag_column, scheme=scheme).items() if v is not None}
        result = api(b.task).evaluate(b, EvalOptions(files=list(files or []), encoding=encoding,
                                                     batch_size=batch_size, extra=extra))
        if json_:
            print_json(result)
        else:
            from rich.table import Table

            table = Table(show_header=False, box=None)
            for key, value in result.items():
                if isinstance(value, dict):
                    continue
                table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
            out.print(table)
            per_type = result.get("per_type")
            if isinstance(per_type, dict):
                t = Table("type", "precision", "recall", "f1", "support")
                for name, row in per_type.items():
                    t.add_row(name, *(f"{row.get(k, 0):.2f}" for k in ("precision", "recall", "f1")),
                              str(row.get("support", "")))
                out.print(t)

    @app.command("predict")
    @friendly
    def predict(
        model: Path = typer.Argument(..., help="Model bundle or training output directory."),
        texts: Optional[List[str]] = typer.Argument(None, help="Input texts (else --input or stdin)."),
        input: Optional[str] = typer.Option(None, "--input", "-i", help="Input file, - for stdin."),
        output: str = typer.Option("-", "--output", "-o", help="Output file, - for stdout."),
        format: Optional[str] = typer.Option(None, "--format", "-f",
                                             help="lm: text|jsonl; ner: jsonl|conll|text; translate: text|jsonl."),
        top_k: int = typer.Option(5, "--top-k", help="lm: next words per line."),
        beam: int = typer.Option(5, "--beam", help="translate: beam size (1 = greedy)."),
        nbest: int = typer.Option(1, "--nbest", help="translate: hypotheses per line (jsonl)."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Sentences per batch."),
        runtime: str = typer.Option("auto", "--runtime", help="auto, lite or keras."),
        encoding: str = typer.Option("utf-8", "--encoding"),
        word_column: Optional[int] = typer.Option(None, "--word-column", help="ner: word column of CoNLL input."),
        scheme: Optional[str] = typer.Option(None, "--scheme", help="ner: output tag scheme."),
    ) -> None:
        """Run a model on text: next words (lm), entities (ner), translations (translate)."""
        from lstmtext import bundle as bundle_io
        from lstmtext.errors import UsageError
        from lstmtext.io import atomic_file
        from lstmtext.tasks import PredictOptions, api

        if top_k < 1 or beam < 1 or nbest < 1:
            raise UsageError("--top-k, --beam and --nbest must be at least 1")
        if runtime not in ("auto", "lite", "keras"):
            raise UsageError("--runtime must be auto, lite or keras")
        b = bundle_io.read(model)
        if b.task not in ("lm", "ner") or runtime == "keras":  # lm and ner predict with numpy, without TensorFlow
            from lstmtext.backend import load_keras

            load_keras()
        extra = {k: v for k, v in dict(nbest=nbest, word_column=word_column, scheme=scheme,
                                       input_path=input).items() if v is not None}
        options = PredictOptions(format=format, top_k=top_k, beam=beam, batch_size=batch_size,
                                 runtime=runtime, encoding=encoding, extra=extra)
        lines = _input_lines(texts, input, encoding)
        with atomic_file(output) as fh:
            for line in api(b.task).predict(b, lines, options):
                fh.write(line + "\n")

    @app.command("generate")
    @friendly
    def generate(
        model: Path = typer.Argument(..., help="Language model bundle."),
        prompt: str = typer.Argument("", help="Text to continue."),
        max_words: int = typer.Option(30, "--max-words", help="Words to generate."),
        temperature: float = typer.Option(1.0, "--temperature", help="0 = greedy."),
        top_k: int = typer.Option(0, "--top-k", help="Sample from the k most likely pieces (0: all)."),
        top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling mass."),
        seed: Optional[int] = typer.Option(None, "--seed", help="Seed for reproducible samples."),
    ) -> None:
        """Generate text with a language model."""
        from lstmtext import bundle as bundle_io
        from lstmtext.lm.api import generate as run

        b = bundle_io.read(model, task="lm")
        text = run(b, prompt, max_words, temperature, top_k, top_p, seed)
        sys.stdout.write((prompt + " " if prompt else "") + text + "\n")
