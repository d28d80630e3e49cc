"""A wall-time budget for training (``--budget 45m``).

:class:`BudgetPlanner` plans how many epochs fit in the budget from the
throughput measured on the machine the training runs on, and tells
:func:`lstmtext.training.loop.fit` when to stop:

1. **Probe.** After the first :data:`PROBE_STEPS` steps (or
   :data:`PROBE_SECONDS` of them, or the epoch's end) it measures the time
   per step, leaving out the run's first step, which pays for tracing and
   compiling the step function once. One epoch is estimated as steps per
   epoch x time per step (validation and saving are not known yet) and the
   plan is printed once: ``budget 45m: ~3.1 min/epoch measured over the
   first 20 steps -> 12 epochs``.
2. **Too short.** If the epoch that is running cannot end within the budget
   by that estimate, training stops at once with one line giving the
   estimate (a :class:`~lstmtext.errors.UsageError` naming ``--budget``);
   nothing is written, so an earlier model in the output directory is
   untouched and the same command can be run again with a larger budget.
3. **Re-plan.** After each epoch, one epoch is re-estimated as the epoch's
   steady training time plus its measured validation and checkpoint-saving
   time, averaged over the last three epochs (the run's first is left out
   once there are others: it also compiled the validation); a new plan is
   printed when the number of epochs changes. Another epoch starts only if
   it is expected to end within the budget.
4. **Deadline.** Should the budget run out inside an epoch anyway (the
   machine slowed down), training stops after the current step, as on
   Ctrl-C: ``model-last`` is written with the position inside the epoch
   (``--resume`` continues from it), ``model-best`` is the best finished
   epoch's. If no epoch had finished yet, the partly trained model is
   validated and written as ``model-best`` too, so a budget never ends
   without a loadable model once the first steps showed an epoch fits.
   An epoch whose last step is done is validated and saved, even a little
   late, rather than cut.

The clock runs from ``TrainOptions.started`` (the command line sets it when
the command starts, so importing TensorFlow, reading the data and training
the tokenizer count), and a reserve of
:data:`LITE_RESERVE_SECONDS` is kept for the LiteRT parts written after
training. A budget stop is a normal end (exit code 0). With the ``step``
learning-rate schedule the decay follows the planned epochs
(:meth:`BudgetPlanner.step_schedule`).

Model size: ``TrainOptions.budget`` (seconds, or ``None``) and
:func:`seconds_left` are the hooks the auto defaults read to cap the
network's size for a budget; ``--epochs`` (or the auto epochs) stays the
maximum the plan never exceeds.
"""

from __future__ import annotations

import math
import re
import statistics
import time

from lstmtext.errors import UsageError

# The plan is made after this many steps or this many seconds of steps, whichever comes first.
PROBE_STEPS = 20
PROBE_SECONDS = 30.0
# Steady steps (after the run's first) measured before the probe may end on time alone, and
# before a budget can be judged too short (unless the deadline has long passed).
MIN_STEADY_STEPS = 5
# A budget's step schedule decays at most this many configured decays an epoch.
MAX_DECAYS_PER_EPOCH = 2
# Building the LiteRT parts after training took 4.7-8.9 s for the shipped models
# (5-25 MB of weights) on this project's 2-core CPU; kept free at the budget's end.
LITE_RESERVE_SECONDS = 10.0

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([hms])")


def parse_duration(text: str | float | int, option: str = "--budget") -> float:
    """Seconds in a duration such as ``45m``, ``2h``, ``90s``, ``1h30m`` or ``1.5h``.

    A bare number counts seconds.

    Raises:
        UsageError: naming ``option`` for anything else, zero or a negative value.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        s = str(text).strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(?:\.\d+)?", s):
            seconds = float(s)
        elif s and re.fullmatch(r"(?:\d+(?:\.\d+)?[hms])+", s):
            parts = _DURATION.findall(s)
            units = [u for _, u in parts]
            if len(set(units)) != len(units) or units != sorted(units, key="hms".index):
                raise UsageError(f"{option}: cannot read '{text}' as a duration (units in the order h, m, s, "
                                 "each once: 45m, 2h, 90s, 1h30m)")
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
        else:
            raise UsageError(f"{option}: cannot read '{text}' as a duration (examples: 45m, 2h, 90s, 1h30m)")
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"{option}: the duration must be positive, got '{text}'")
    return seconds


def seconds_left(options) -> float | None:
    """Seconds left of ``options.budget`` (a ``TrainOptions``) now, or ``None`` without a budget.

    For the auto defaults: read after the data and tokenizer are ready, it
    tells how much time training itself has, to cap the model's size.
    """
    if not getattr(options, "budget", None):
        return None
    return options.budget - (time.monotonic() - options.started)


def format_duration(seconds: float) -> str:
    """``2700`` -> ``45m``; ``5400`` -> ``1h30m``; ``12.5`` -> ``12.5s`` (the form ``--budget`` reads)."""
    if seconds < 60:
        return f"{seconds:.3g}s"
    total = int(round(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v)


def format_estimate(seconds: float) -> str:
    """A measured time for reading: ``2.4 min``, ``38s``, ``1.3 h``."""
    if seconds < 90:
        return f"{seconds:.2g}s" if seconds < 10 else f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class BudgetPlanner:
    """Plans and enforces a wall-time budget for :func:`~lstmtext.training.loop.fit`.

    Args:
        seconds: The budget.
        started: ``time.monotonic()`` when the budget's clock started.
        max_epochs: The configured maximum number of epochs (never exceeded).
        reporter: Where the plan and the stop are reported.
        reserve: Seconds kept free at the end (the LiteRT parts).

    Attributes:
        planned: The planned number of epochs (``None`` until the first probe).
        stopped: ``"plan"`` (another epoch would not fit), ``"deadline"``
            (the budget ran out inside an epoch) or ``None``.
    """

    def __init__(self, seconds: float, started: float, max_epochs: int, reporter, reserve: float = 0.0):
        self.seconds = float(seconds)
        self.started = started
        self.deadline = started + self.seconds - reserve
        self.max_epochs = int(max_epochs)
        self.reporter = reporter
        self.planned: int | None = None
        self.stopped: str | None = None
        self.epoch_seconds: float | None = None  # one whole epoch, once measured
        self._measured: list[float] = []  # each epoch of this run: steady training + validation + saving
        self.save_seconds = 0.0  # model-best plus model-last, the longest seen
        self.last_save_seconds = 0.0  # model-last alone
        self._probe_done = False

    @property
    def label(self) -> str:
        return f"budget {format_duration(self.seconds)}"

    # ------------------------------------------------------------ epochs
    def epoch_begin(self, epoch: int, steps: int | None, skip: int) -> None:
        """An epoch (0-based) of ``steps`` steps starts, ``skip`` of them already trained (resume)."""
        self.epoch, self.steps, self.skip = epoch, steps, skip
        self.t_epoch = time.monotonic()
        self.t_first = None  # end of this epoch's first step
        self.epoch_steps = 0
        self.gaps: list[float] = []  # seconds of each step after the epoch's first

    def _typical_rate(self) -> tuple[float, float]:
        """``(median, fastest)`` seconds per steady step so far (for the first plan).

        A step that meets a new input shape (the translator's length buckets)
        compiles again and takes many times longer than the rest; the median
        leaves those out, and the too-short verdict uses the fastest step, so
        compiling never refuses a budget that the steps themselves fit.
        """
        if len(self.gaps) >= 3:
            return statistics.median(self.gaps), min(self.gaps)
        rate = self._rate() or 0.0
        return rate, min(self.gaps, default=rate)

    def _rate(self) -> float | None:
        """Seconds per steady step in the running epoch (its first step left out)."""
        if self.epoch_steps >= 2 and self.t_first is not None:
            return (self.t_last - self.t_first) / (self.epoch_steps - 1)
        if self.epoch_steps == 1:
            return self.t_last - self.t_epoch
        return None

    def step_done(self) -> str | None:
        """Call after every step. Returns ``"deadline"`` when training must stop now.

        Raises:
            UsageError: the budget is too short for the running epoch (see the module's rule 2).
        """
        now = time.monotonic()
        if self.epoch_steps:
            self.gaps.append(now - self.t_last)
        self.epoch_steps += 1
        self.t_last = now
        if self.epoch_steps == 1:
            self.t_first = now
        left = (self.steps - self.skip - self.epoch_steps) if self.steps else None  # steps still to run
        late = now + self.last_save_seconds >= self.deadline
        if not self._probe_done:
            if left is None:  # an epoch of unknown length is planned when it ends
                self._probe_done = True
            else:
                steady = self.epoch_steps - 1  # this epoch's steps after its first
                probe_over = (steady >= PROBE_STEPS or left <= 0
                              or (now - self.t_epoch >= PROBE_SECONDS and steady >= MIN_STEADY_STEPS))
                # Past the deadline before the plan: a few more steps make the
                # estimate in the too-short message a measurement, not a guess.
                if probe_over or (late and (steady >= MIN_STEADY_STEPS or now - self.deadline > PROBE_SECONDS)):
                    self._probe(now, left)
                elif late:
                    return None
        # After an epoch's last step its validation and save follow rather than
        # a cut: its training is done, and only a validated epoch can be model-best.
        if late and (left is None or left > 0):
            self.stopped = "deadline"
            return "deadline"
        return None

    def _probe(self, now: float, left: int) -> None:
        """The first plan, from the steps measured so far."""
        self._probe_done = True
        rate, fastest = self._typical_rate()
        steps = self.steps or self.epoch_steps
        epoch_estimate = steps * rate
        epoch_end = now + max(left, 0) * rate
        # Judged while steps are left: an epoch whose steps are all done is
        # validated and saved (a little late) rather than thrown away. Too short
        # means too short even at the fastest step measured.
        if self.epoch_seconds is None and left > 0 and now + left * fastest > self.deadline:
            epoch_estimate, epoch_end = steps * fastest, now + left * fastest
            measured = self.epoch_steps - 1 if self.epoch_steps > 1 else 1
            total = epoch_end - self.started
            overhead = total - epoch_estimate  # reading data, building the model, compiling the step
            more = (f"; with {format_estimate(overhead)} of setup and compiling it would end "
                    f"~{format_estimate(total)} after the start" if overhead >= max(1.0, 0.1 * total) else "")
            raise UsageError(
                f"{self.label} is shorter than one epoch (~{format_estimate(epoch_estimate)} measured over "
                f"{measured} step{'s' if measured != 1 else ''}{more}); raise --budget or use less data")
        extra = int((self.deadline - epoch_end) // epoch_estimate) if epoch_estimate > 0 else self.max_epochs
        self._set_plan(self.epoch + 1 + extra, f"~{format_estimate(epoch_estimate)}/epoch measured over the "
                       f"first {max(self.epoch_steps - 1, 1)} steps", first=True)

    def _set_plan(self, epochs: int, why: str, first: bool = False) -> None:
        epochs = max(1, min(self.max_epochs, epochs))
        if epochs == self.planned:
            return
        capped = " (the configured maximum)" if epochs == self.max_epochs else ""
        verb = "" if first else "re-planned: "
        self.planned = epochs
        self.reporter.message(f"{self.label}: {verb}{why} -> {epochs} epoch{'s' if epochs != 1 else ''}{capped}")

    def epoch_end(self, epoch: int, train_seconds: float, valid_seconds: float, save_seconds: float,
                  last_save_seconds: float) -> bool:
        """Re-plan after epoch ``epoch`` (0-based). Returns whether another epoch fits."""
        now = time.monotonic()
        steps = self.steps or self.epoch_steps
        rate = self._rate()
        steady = steps * rate if rate is not None else train_seconds
        self.save_seconds = max(self.save_seconds, save_seconds)
        self.last_save_seconds = max(self.last_save_seconds, last_save_seconds)
        self._measured.append(steady + valid_seconds + self.save_seconds)
        # The run's first epoch also pays for compiling validation; once there
        # are others it is left out, and the last three are averaged so one
        # slow epoch on a busy machine does not swing the plan.
        recent = (self._measured[1:] if len(self._measured) > 1 else self._measured)[-3:]
        self.epoch_seconds = sum(recent) / len(recent)
        self._probe_done = True
        left = self.deadline - now
        if epoch + 1 >= self.max_epochs:
            return False
        if self.epoch_seconds > left:
            self.stopped = "plan"
            return False
        extra = int(left // self.epoch_seconds) if self.epoch_seconds > 0 else self.max_epochs
        over = f"epochs {epoch + 2 - len(recent)}-{epoch + 1}" if len(recent) > 1 else f"epoch {epoch + 1}"
        self._set_plan(epoch + 1 + extra, f"~{format_estimate(self.epoch_seconds)}/epoch measured over {over} "
                       "(training, validation and saving)")
        return True

    # ------------------------------------------------------------ schedule
    def step_schedule(self, decay_start: int, decay: float) -> tuple[int, float]:
        """The ``step`` schedule's ``(decay_start, decay)`` stretched onto the planned epochs.

        With ``E`` configured and ``P < E`` planned epochs, decay starts at
        the same share of the run (``round(decay_start * P / E)``) and the
        factor is chosen so the last planned epoch trains at the rate the
        configured schedule reaches in its last epoch: ``decay' ** (P -
        start') = decay ** (E - decay_start)``, but never stronger than
        ``decay ** 2`` an epoch: on 10,000 lines of PTB a 3-epoch plan
        that went 1.0, 0.022, 0.0005 learned nothing in its third epoch
        (331.9 then 331.6). Unchanged until there is a plan, and when
        everything fits.
        """
        planned, total = self.planned, self.max_epochs
        if planned is None or planned >= total or decay_start >= total:
            return decay_start, decay
        start = int(round(decay_start * planned / total))
        decays = total - decay_start  # decay steps the configured run ends with
        if planned - start <= 0:
            return start, decay
        return start, max(decay ** (decays / (planned - start)), decay ** MAX_DECAYS_PER_EPOCH)

    def summary(self) -> dict:
        """What the budget did, for the returned metrics."""
        return {"seconds": self.seconds, "planned_epochs": self.planned, "stopped": self.stopped,
                "used_seconds": round(time.monotonic() - self.started, 1)}
