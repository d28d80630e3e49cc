"""Console output for the command line: errors, progress, tables.

Only the CLI writes to the terminal; library code reports through
:class:`lstmtext.training.reporting.Reporter`, which :class:`RichReporter`
implements here.
"""

from __future__ import annotations

import functools
import sys
import time

import typer

from lstmtext.errors import LstmtextError


class _LazyConsole:
    """A ``rich`` console made on first use: importing rich costs about 40 ms of every start."""

    def __init__(self, **options):
        self._options = options
        self._console = None

    @property
    def console(self):
        """The ``rich.console.Console`` itself (what rich's own objects, e.g. ``Progress``, must be given)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name):
        return getattr(self.console, name)


# soft_wrap: a line longer than the terminal (or than 80 columns, in a log file) stays one line
# for the terminal to fold, so logs keep one message a line.
err = _LazyConsole(stderr=True, highlight=False, soft_wrap=True)
out = _LazyConsole(highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one red line on stderr and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def friendly(fn):
    """Turn user errors into one line on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LstmtextError as exc:
            raise fail(_escape(str(exc)), exc.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except MemoryError:
            raise fail("out of memory (try a smaller --batch-size)") from None
        except OSError as exc:  # disk full, permission denied, broken pipe ...
            if isinstance(exc, BrokenPipeError):
                raise typer.Exit(141) from None
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            raise fail(_escape(f"{where}{exc.strerror or exc}")) from None

    return wrapper


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


class RichReporter:
    """Training progress: a rich bar on a terminal, plain lines otherwise.

    The bar shows epoch, step, loss, tokens/s and ETA; each epoch ends with a
    line of metrics. ``quiet`` silences both.
    """

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.progress = None
        self.task = None
        self.terminal = err.is_terminal

    # Reporter interface -------------------------------------------------
    def train_begin(self, epochs: int, start_epoch: int) -> None:
        self.epochs = epochs

    def epoch_begin(self, epoch: int, steps: int | None, lr: float) -> None:
        self.epoch, self.steps, self.lr = epoch, steps, lr
        self.t0 = time.perf_counter()
        self.tokens = 0
        self.loss = float("nan")
        self.next_note = 0.1
        self.first_step = None  # a resumed epoch starts past step 0
        if self.quiet:
            return
        if self.terminal:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self.progress = Progress(
                TextColumn(f"epoch {epoch + 1}/{self.epochs}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.3f}"), TextColumn("{task.fields[tps]:,.0f} tok/s"),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                console=err.console, transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("train", total=steps, loss=float("nan"), tps=0.0)

    def step(self, step: int, loss: float, tokens: int) -> None:
        self.tokens += tokens
        self.loss = loss
        if self.quiet:
            return
        elapsed = time.perf_counter() - self.t0
        tps = self.tokens / max(elapsed, 1e-9)
        if self.first_step is None:
            self.first_step = step
        if self.progress is not None:
            if step % 5 == 0 or (self.steps and step + 1 == self.steps):
                self.progress.update(self.task, completed=step + 1, loss=loss, tps=tps)
        elif self.steps and (step + 1) / self.steps >= self.next_note:
            # The rate of the steps run in this process: a resumed epoch's earlier steps took no time here.
            eta = elapsed / (step + 1 - self.first_step) * (self.steps - step - 1)
            err.print(f"epoch {self.epoch + 1}/{self.epochs} step {step + 1}/{self.steps} "
                      f"loss {loss:.3f} {tps:,.0f} tok/s eta {eta:.0f}s")
            while (step + 1) / self.steps >= self.next_note:  # one line, not one per tenth already passed
                self.next_note += 0.1

    def epoch_end(self, epoch: int, metrics: dict) -> None:
        self._stop()
        if not self.quiet:
            from lstmtext.training.reporting import format_metrics

            shown = {k: v for k, v in metrics.items() if k != "epoch"}
            err.print(f"[bold]epoch {epoch + 1}/{self.epochs}[/] {format_metrics(shown)}", soft_wrap=True)

    def message(self, text: str) -> None:
        if not self.quiet:
            err.print(text, markup=False, soft_wrap=True)

    def train_end(self) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def print_json(value) -> None:
    """One JSON object on stdout."""
    import json

    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()
