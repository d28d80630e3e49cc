"""Experiments behind the ``auto`` defaults (benchmarks/AUTO_DEFAULTS.md).

Each experiment is one ``lstmtext train`` command; this script runs a list of
them one after the other (``run``) and turns their output directories into
the Markdown tables of AUTO_DEFAULTS.md (``table``)::

    python benchmarks/auto_defaults.py run QUEUE.txt RUNS_DIR     # one 'name<TAB>command' a line
    python benchmarks/auto_defaults.py table RUNS_DIR/*            # name, best score, epoch, time, curve

A queue line's command is run with ``--output RUNS_DIR/name --overwrite``
appended; its standard error goes to ``RUNS_DIR/name.log``. Run it from the
repository root with the data paths of ../shared/data.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

SCORES = {"lm": ("valid_perplexity", "min"), "ner": ("f1", "max"), "translate": ("valid_bleu", "max")}


def run(queue: Path, runs: Path) -> None:
    """Run each ``name<TAB>command`` line of ``queue`` not yet done under ``runs``."""
    runs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LSTMTEXT_LITE_PARTS": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
    for line in queue.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, command = line.split("\t", 1)
        out = runs / name
        if (out / "model-last" / "history.json").is_file() and (runs / f"{name}.done").is_file():
            continue
        args = shlex.split(command) + ["--output", str(out), "--overwrite", "--quiet"]
        t0 = time.perf_counter()
        with open(runs / f"{name}.log", "w") as log:
            log.write(command + "\n")
            log.flush()
            rc = subprocess.call(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        (runs / f"{name}.done").write_text(json.dumps({"rc": rc, "seconds": time.perf_counter() - t0,
                                                       "command": command}))
        print(f"{name}: rc={rc} {time.perf_counter() - t0:.0f}s", flush=True)


def row(directory: Path) -> str:
    """One Markdown table row for a run directory."""
    done = directory.with_name(directory.name + ".done")
    info = json.loads(done.read_text()) if done.is_file() else {}
    last = directory / "model-last"
    if not (last / "history.json").is_file():
        return f"| {directory.name} | failed (rc {info.get('rc')}) | | | | | |"
    meta = json.loads((last / "config.json").read_text())
    key, mode = SCORES[meta["task"]]
    history = json.loads((last / "history.json").read_text())
    scores = [h[key] for h in history]
    best = (min if mode == "min" else max)(range(len(scores)), key=lambda i: scores[i])
    epoch_s = sum(h["epoch_seconds"] for h in history) / len(history)
    # Epochs 1, 2, 3, 5, 10, 15, ... and the last: enough to see the shape.
    shown = sorted({i for i in range(len(scores)) if i < 3 or (i + 1) % 5 == 0} | {len(scores) - 1})
    curve = " ".join(f"{i + 1}:{scores[i]:.1f}" for i in shown)
    # How much the score jumps between epochs once past the first few (the tagger's "swings").
    late = scores[3:]
    swing = max((abs(a - b) for a, b in zip(late, late[1:])), default=0.0)
    return (f"| {directory.name} | {scores[best]:.2f} | {best + 1}/{len(scores)} | {epoch_s:.0f} | "
            f"{info.get('seconds', 0) / 60:.1f} | {swing:.1f} | {curve} |")


def table(directories: list[Path]) -> None:
    """Print the Markdown table of the given run directories."""
    print("| run | best valid | best epoch / run | s per epoch | minutes | largest change between epochs "
          "after the 4th | validation curve (epoch:score) |")
    print("|---|---|---|---|---|---|---|")
    for d in directories:
        if d.is_dir():
            print(row(d))


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "run":
        run(Path(sys.argv[2]), Path(sys.argv[3]))
    elif len(sys.argv) >= 3 and sys.argv[1] == "table":
        table([Path(p) for p in sys.argv[2:]])
    else:
        sys.exit(__doc__)
