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


def _prompted_lines() -> Iterator[str]:
    """Lines typed after a ``> `` prompt on stderr, until end of input; blank lines are skipped."""
    while True:
        sys.stderr.write("> ")
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            sys.stderr.write("\n")
            return
        if line.strip():
            yield line.rstrip("\n")


def _lm_eval_runtime(bundle, extra: dict) -> str:
    from lstmtext.lm import api as lm_api

    return lm_api.eval_runtime(lm_api.cache_settings(lm_api.load_config(bundle), extra), extra)


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
        labels: Optional[List[Path]] = typer.Option(None, "--labels", help="character tagger: FASTA labels for "
                                                    "each FASTA sequence file."),
        mask: Optional[List[Path]] = typer.Option(None, "--mask", help="character tagger: FASTA masks (0: "
                                                  "not scored) for each FASTA sequence file."),
        records: Optional[str] = typer.Option(None, "--records", help="character tagger: all (default), "
                                              "validation (headers VALIDATION=True) or train."),
        runtime: Optional[str] = typer.Option(None, "--runtime", help="keras, lite or numpy (default: numpy "
                                              "for lm, auto for ner and translate): lite scores the LiteRT "
                                              "parts, e.g. after quantisation; keras the compiled network "
                                              "(for a GPU)."),
        cache_window: Optional[int] = typer.Option(None, "--cache-window", help="lm: continuous cache over the "
                                                   "last N positions (0: off; default: the bundle's "
                                                   "cache_window)."),
        cache_theta: Optional[float] = typer.Option(None, "--cache-theta", help="lm: the cache's similarity "
                                                    "scale (default: the bundle's)."),
        cache_lambda: Optional[float] = typer.Option(None, "--cache-lambda", help="lm: the cache's weight in "
                                                     "the mixture (default: the bundle's)."),
    ) -> None:
        """Score a model on data: perplexity (lm), entity F1 (ner), BLEU/chrF (translate)."""
        from lstmtext import bundle as bundle_io
        from lstmtext.backend import load_keras
        from lstmtext.errors import UsageError
        from lstmtext.tasks import EvalOptions, api

        if runtime not in (None, "auto", "keras", "lite", "numpy"):
            raise UsageError("--runtime must be auto, keras, lite or numpy")
        b = bundle_io.read(model)
        extra = {k: v for k, v in dict(source=source, target=target, beam=beam, word_column=word_column,
                                       tag_column=tag_column, scheme=scheme, runtime=runtime, records=records,
                                       labels=[str(p) for p in labels] if labels else None,
                                       mask=[str(p) for p in mask] if mask else None, cache_window=cache_window,
                                       cache_theta=cache_theta, cache_lambda=cache_lambda).items()
                 if v is not None}
        if b.task != "lm" and any(v is not None for v in (cache_window, cache_theta, cache_lambda)):
            raise UsageError("--cache-window, --cache-theta and --cache-lambda are for language models")
        if runtime == "keras" or (b.task == "lm" and _lm_eval_runtime(b, extra) == "keras"):
            load_keras()  # the light runtimes (the tagger's and translator's default) need no TensorFlow
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
            if isinstance(result.get("cache"), dict):
                c = result["cache"]
                out.print(f"with a continuous cache: window {c['window']}, theta {c['theta']}, lambda {c['lam']} "
                          "(--cache-window 0 scores the network alone)")
            for key, head in (("per_type", "type"), ("per_label", "label")):
                rows = result.get(key)
                if isinstance(rows, dict):
                    t = Table(head, "precision", "recall", "f1", "support")
                    for name, row in rows.items():
                        t.add_row(name, *(f"{row.get(k, 0):.2f}" for k in ("precision", "recall", "f1")),
                                  str(row.get("support", "")))
                    out.print(t)
            confusion = result.get("confusion")
            if isinstance(confusion, dict) and len(result.get("per_label", {})) <= 20:
                names = list(result["per_label"])
                t = Table("gold \\ predicted", *names)
                for gold in names:
                    t.add_row(gold, *(str(confusion.get(gold, {}).get(p, 0)) for p in names))
                out.print(t)

    @app.command("predict")
    @friendly
    def predict(
        model: Path = typer.Argument(..., help="Model bundle or training output directory."),
        texts: Optional[List[str]] = typer.Argument(None, help="Input texts (else --input or stdin)."),
        input: Optional[str] = typer.Option(None, "--input", "-i", help="Input file, - for stdin."),
        output: str = typer.Option("-", "--output", "-o", help="Output file, - for stdout."),
        format: Optional[str] = typer.Option(None, "--format", "-f",
                                             help="lm: text|jsonl; ner: jsonl|conll|text (character "
                                                  "taggers: fasta|jsonl|text); translate: text|jsonl."),
        top_k: int = typer.Option(5, "--top-k", help="lm: next words per line."),
        beam: int = typer.Option(5, "--beam", help="translate: beam size (1 = greedy)."),
        nbest: int = typer.Option(1, "--nbest", help="translate: hypotheses per line (jsonl)."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Sentences per batch."),
        runtime: str = typer.Option("auto", "--runtime", help="auto (LiteRT parts when the bundle has them, "
                                    "else NumPy), lite, numpy or keras."),
        encoding: str = typer.Option("utf-8", "--encoding"),
        word_column: Optional[int] = typer.Option(None, "--word-column", help="ner: word column of CoNLL input."),
        scheme: Optional[str] = typer.Option(None, "--scheme", help="ner: output tag scheme."),
        interactive: bool = typer.Option(False, "--interactive", help="Load the model once, then answer each "
                                         "line as it is typed (prompt on stderr; Ctrl-D ends)."),
    ) -> None:
        """Run a model on text: next words (lm), entities (ner), translations (translate)."""
        from lstmtext import bundle as bundle_io
        from lstmtext.errors import UsageError
        from lstmtext.io import atomic_file
        from lstmtext.tasks import PredictOptions, api

        if top_k < 1 or beam < 1 or nbest < 1:
            raise UsageError("--top-k, --beam and --nbest must be at least 1")
        if runtime not in ("auto", "lite", "numpy", "keras"):
            raise UsageError("--runtime must be auto, lite, numpy or keras")
        b = bundle_io.read(model, check_weights=False)  # weights are checked when read
        if runtime == "keras" and b.task == "lm":
            raise UsageError("--runtime keras: a language model predicts with lite or numpy")
        if runtime == "keras":  # the other runtimes never import TensorFlow
            from lstmtext.backend import load_keras

            load_keras()
        extra = {k: v for k, v in dict(nbest=nbest, word_column=word_column, scheme=scheme,
                                       input_path=input).items() if v is not None}
        options = PredictOptions(format=format, top_k=top_k, beam=beam, batch_size=batch_size,
                                 runtime=runtime, encoding=encoding, extra=extra)
        if interactive:
            if texts or input or output != "-":
                raise UsageError("--interactive reads the terminal and answers on it: drop TEXT, --input "
                                 "and --output")
            options.extra["window"] = 1  # answer each line before reading the next
            options.format = format or "text"
            for line in api(b.task).predict(b, _prompted_lines(), options):
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            return
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
        runtime: str = typer.Option("auto", "--runtime", help="auto, lite or numpy."),
        allow_unk: bool = typer.Option(False, "--allow-unk", help="Let the unknown-word token be generated."),
    ) -> None:
        """Generate text with a language model; words are written as they come (Ctrl-C stops)."""
        import signal

        from lstmtext import bundle as bundle_io
        from lstmtext.lm.api import generate_stream

        b = bundle_io.read(model, task="lm", check_weights=False)
        chunks = generate_stream(b, prompt, max_words, temperature, top_k, top_p, seed, runtime, allow_unk)
        stdout = sys.stdout
        try:
            stdout.write(prompt)
            first = True
            for chunk in chunks:
                # The prompt and the first word are one line: one space between them.
                if first and prompt and chunk and not chunk.startswith(("\n", " ")):
                    chunk = " " + chunk
                first = False
                stdout.write(chunk)
                stdout.flush()
            stdout.write("\n")
            stdout.flush()
        except KeyboardInterrupt:
            stdout.write("\n")
            stdout.flush()
            raise typer.Exit(128 + signal.SIGINT) from None
        except BrokenPipeError:  # `| head`: the reader has what it wanted
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
