#!/usr/bin/env python3
"""Train a benchmark recipe and append its result to benchmarks/RESULTS.md.

Usage::

    python benchmarks/run_recipe.py lm benchmarks/recipes/ptb-small.toml [--data ../shared/data]
        [--output runs/NAME] [-- extra train options]

Runs ``cli.py train <task>`` on the recipe's benchmark data, times it, scores
the best model on the validation split with ``cli.py evaluate --json`` and
appends one section to RESULTS.md with the date, machine, exact commands,
wall time, training tokens/s and the validation score. Only numbers printed by
those commands are written.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = {
    "lm": (["--train", "ptb/ptb.train.txt", "--valid", "ptb/ptb.valid.txt"], ["ptb/ptb.valid.txt"]),
    "ner": (["--train", "conll2003/train.txt", "--valid", "conll2003/valid.txt"], ["conll2003/valid.txt"]),
    "translate": (["--train-source", "multi30k/train.en", "--train-target", "multi30k/train.de",
                   "--valid-source", "multi30k/val.en", "--valid-target", "multi30k/val.de"],
                  ["--source", "multi30k/val.en", "--target", "multi30k/val.de"]),
}
HEADLINE = {"lm": "perplexity", "ner": "f1", "translate": "bleu"}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}"


def with_data(args: list[str], data: Path) -> list[str]:
    return [str(data / a) if "/" in a and not a.startswith("-") else a for a in args]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=sorted(DATA))
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument("extra", nargs="*", help="extra options for train (after --)")
    args = parser.parse_args()
    name = args.recipe.stem
    output = args.output or ROOT / "runs" / name
    train_args, eval_args = DATA[args.task]
    train_cmd = [sys.executable, str(ROOT / "cli.py"), "train", args.task, *with_data(train_args, args.data),
                 "--config", str(args.recipe), "--output", str(output), "--overwrite", *args.extra]
    t0 = time.time()
    subprocess.run(train_cmd, check=True)
    wall = time.time() - t0
    eval_cmd = [sys.executable, str(ROOT / "cli.py"), "evaluate", str(output / "model-best"),
                *with_data(eval_args, args.data), "--json"]
    if args.task != "translate":
        eval_cmd = eval_cmd[:-2] + [eval_cmd[-2], "--json"]
    result = json.loads(subprocess.run(eval_cmd, check=True, capture_output=True, text=True).stdout)
    metrics = json.loads((output / "model-best" / "metrics.json").read_text())
    # model-last holds the history of every epoch run (model-best's stops at the best epoch).
    history = json.loads((output / "model-last" / "history.json").read_text())
    tps = sorted(h["tokens_per_s"] for h in history)
    rel = lambda cmd: " ".join(os.path.relpath(c, ROOT) if os.path.isabs(c) else c for c in cmd[1:])  # noqa: E731
    lines = [
        f"\n## {args.task}: {name} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n",
        f"- machine: {machine()}",
        f"- train: `python {rel(train_cmd)}`",
        f"- evaluate: `python {rel(eval_cmd)}`",
        f"- wall time (train, incl. start-up and per-epoch validation): {wall / 60:.1f} min, "
        f"{len(history)} epochs (best: epoch {metrics.get('epoch')})",
        f"- training speed: median {tps[len(tps) // 2]:,.0f} tokens/s over epochs",
        f"- validation {HEADLINE[args.task]} of model-best: **{result[HEADLINE[args.task]]:.2f}**",
        "- per epoch: " + ", ".join(f"{h.get('valid_' + HEADLINE[args.task], h.get(HEADLINE[args.task], float('nan'))):.2f}"
                                     for h in history),
        "- validation (all): `" + json.dumps({k: v for k, v in result.items() if not isinstance(v, (dict, list))}) + "`",
    ]
    with open(args.results, "a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
