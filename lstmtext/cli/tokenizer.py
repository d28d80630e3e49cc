"""``lstmtext tokenizer train|encode|decode``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from lstmtext.cli.console import err, friendly


def register(app: typer.Typer) -> None:
    @app.command("train")
    @friendly
    def train(
        files: List[Path] = typer.Argument(..., help="Training text files."),
        output: Path = typer.Option(..., "--output", "-o", help="Model file to write."),
        vocab_size: str = typer.Option("auto", "--vocab-size", help="Vocabulary size (word: 0 keeps all); auto: "
                                       "from the text's word types. A size the text cannot support is lowered "
                                       "with a warning."),
        type: str = typer.Option("unigram", "--type", help="unigram, bpe, char or word."),
        encoding: str = typer.Option("utf-8", "--encoding", help="Input encoding."),
    ) -> None:
        """Train a tokenizer on text files."""
        from lstmtext.errors import UsageError
        from lstmtext.io import iter_lines
        from lstmtext.tokenizers import TYPES, save_tokenizer, train_tokenizer

        if type not in TYPES:
            raise UsageError(f"--type must be one of {', '.join(TYPES)}, got '{type}'")
        if vocab_size.strip().lower() != "auto" and not vocab_size.strip().isdigit():
            raise UsageError(f"--vocab-size must be auto or an integer >= 0, got '{vocab_size}'")
        lines = [t for f in files for _, t in iter_lines(f, encoding)]
        if vocab_size.strip().lower() == "auto":
            from lstmtext.training.auto import TextStats, vocab_choice

            choice = vocab_choice(TextStats.from_lines(lines), type)
            size = choice.value
            err.print(f"vocab_size auto: {size} ({choice.reason})", markup=False)
        else:
            size = int(vocab_size)
        tok = train_tokenizer(lines, size, type, warn=lambda text: err.print(f"[yellow]{text}[/]"))
        save_tokenizer(tok, output)
        err.print(f"wrote {output} ({tok.kind}, {tok.vocab_size} pieces)")

    @app.command("encode")
    @friendly
    def encode(
        model: Path = typer.Argument(..., help="Tokenizer file or bundle."),
        input: str = typer.Option("-", "--input", "-i", help="Input file, - for stdin."),
        output: str = typer.Option("-", "--output", "-o", help="Output file, - for stdout."),
        pieces: bool = typer.Option(False, "--pieces", help="Write pieces instead of ids."),
        encoding: str = typer.Option("utf-8", "--encoding"),
    ) -> None:
        """Encode text, one line at a time, into ids (or pieces)."""
        from lstmtext.io import atomic_file, iter_lines

        tok = _load(model)
        with atomic_file(output) as fh:
            for _, line in iter_lines(input, encoding):
                ids = tok.encode(line)
                fh.write(" ".join(tok.id_to_piece(i) if pieces else str(i) for i in ids) + "\n")

    @app.command("decode")
    @friendly
    def decode(
        model: Path = typer.Argument(..., help="Tokenizer file or bundle."),
        input: str = typer.Option("-", "--input", "-i", help="Input file of ids, - for stdin."),
        output: str = typer.Option("-", "--output", "-o", help="Output file, - for stdout."),
    ) -> None:
        """Decode lines of space-separated ids back into text."""
        from lstmtext.errors import DataError
        from lstmtext.io import atomic_file, iter_lines

        tok = _load(model)
        name = "<stdin>" if input == "-" else input
        with atomic_file(output) as fh:
            for number, line in iter_lines(input):
                try:
                    ids = [int(t) for t in line.split()]
                except ValueError:
                    raise DataError("expected space-separated integer ids", name, number) from None
                if any(i < 0 or i >= tok.vocab_size for i in ids):
                    raise DataError(f"id out of range 0..{tok.vocab_size - 1}", name, number)
                fh.write(tok.decode(ids) + "\n")


def _load(path: Path):
    from lstmtext.tokenizers import load_tokenizer

    if path.is_dir() and (path / "tokenizer").is_dir():
        path = path / "tokenizer"
    elif path.is_dir() and (path / "model-best" / "tokenizer").is_dir():
        path = path / "model-best" / "tokenizer"
    return load_tokenizer(path)
