"""The root Typer application and its sub-applications."""

from __future__ import annotations

import importlib

import typer

from lstmtext import __version__
from lstmtext.backend import quiet_logs

# Quiet TensorFlow's C++ start-up chatter before any command imports it.
quiet_logs()

app = typer.Typer(
    name="lstmtext",
    help="Train, evaluate and run LSTM models on text: next-word prediction, "
         "named-entity tagging, translation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
train_app = typer.Typer(help="Train a model: lm, ner or translate.", no_args_is_help=True)
tokenizer_app = typer.Typer(help="Train and apply SentencePiece / word tokenizers.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(tokenizer_app, name="tokenizer")
data_app = typer.Typer(help="Check training data before training: statistics, problems, auto values.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lstmtext {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """lstmtext: LSTM models for text."""


# Each module registers its commands on the apps above.
for _name in ("tokenizer", "train_lm", "train_ner", "train_translate", "run", "info", "export", "models",
              "data"):
    try:
        _module = importlib.import_module(f"lstmtext.cli.{_name}")
    except ModuleNotFoundError as _exc:  # a task still being written
        if _exc.name != f"lstmtext.cli.{_name}":
            raise
        continue
    _module.register(app if _name in ("run", "info", "export", "models") else
                     tokenizer_app if _name == "tokenizer" else data_app if _name == "data" else train_app)


def main() -> None:
    """Entry point of the ``lstmtext`` console script."""
    app()
