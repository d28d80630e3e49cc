#!/usr/bin/env python3
"""A tagger with and without language-model features (``--lm``), same data, same flags.

Usage::

    python benchmarks/lm_features.py --lm FW_LM --lm BW_LM [--data conll2003|conll2000]
        [--sentences 1000] [--budget 20m] [--config RECIPE.toml] [--set KEY=VALUE ...]
        [--feature-column 2] [--parallel] [--append]

The training file is cut deterministically into ``runs/lm-features/data`` (never into the repository):
CoNLL-2003's first ``--sentences`` training sentences (all without it) validated on its validation file,
or CoNLL-2000 without its last 1,000 sentences, validated on them (``--data conll2000``, chunks, tag
column 3). Then two trainings, ``lstmtext train tag --train ... --valid ... [flags]`` without and with
``--lm`` for every given model, both scored by ``lstmtext evaluate --json`` on the validation file, and
timed tagging it end to end (``lstmtext predict MODEL --input VALID --output OUT --format conll`` as its
own process, process start to output written; median of three, the two bundles alternating). With
``--parallel`` the two trainings run at once (each gets a share of the cores, both alike). ``--append``
adds the table and the commands to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
WORK = ROOT / "runs" / "lm-features"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
sys.path.insert(0, str(ROOT / "benchmarks"))

from defaults import _sentences, _write_conll  # noqa: E402


def cli(*args) -> list[str]:
    return [sys.executable, str(ROOT / "cli.py"), *map(str, args)]


def prepare(data: str, sentences: int | None) -> tuple[Path, Path, list[str]]:
    d = WORK / "data" / f"{data}-{sentences or 'all'}"
    if data == "conll2000":
        blocks = _sentences(DATA / "conll2000" / "train.txt")
        return (_write_conll(d / "train.txt", blocks[:-1000][:sentences]), _write_conll(d / "valid.txt", blocks[-1000:]),
                ["--tag-column", "3"])
    blocks = _sentences(DATA / "conll2003" / "train.txt")
    return _write_conll(d / "train.txt", blocks[:sentences]), DATA / "conll2003" / "valid.txt", []


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def tag_seconds(model: Path, valid: Path, out: Path) -> float:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    t0 = time.perf_counter()
    subprocess.run(cli("predict", model, "--input", valid, "--output", out, "--format", "conll"), check=True,
                   env=env, capture_output=True)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lm", action="append", required=True, help="language-model bundle (repeat)")
    parser.add_argument("--data", choices=("conll2003", "conll2000"), default="conll2003")
    parser.add_argument("--sentences", type=int, help="training sentences kept (default: all)")
    parser.add_argument("--budget")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--set", action="append", default=[], dest="sets")
    parser.add_argument("--feature-column", action="append", default=[])
    parser.add_argument("--seed", default="0")
    parser.add_argument("--parallel", action="store_true")
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"benchmark data not found at {DATA}", file=sys.stderr)
        return 2
    train, valid, data_flags = prepare(args.data, args.sentences)
    flags = [*data_flags, "--seed", args.seed, *[a for s in args.sets for a in ("--set", s)],
             *[a for c in args.feature_column for a in ("--feature-column", c)]]
    if args.budget:
        flags += ["--budget", args.budget]
    if args.config:
        flags += ["--config", args.config]
    name = f"{args.data}-{args.sentences or 'all'}"
    runs = {"without": WORK / "runs" / f"{name}-without", "with": WORK / "runs" / f"{name}-with"}
    commands = {kind: cli("train", "tag", "--train", train, "--valid", valid, "--output", out, "--overwrite",
                          "--quiet", *flags, *([a for m in args.lm for a in ("--lm", m)] if kind == "with" else []))
                for kind, out in runs.items()}
    started, walls = {}, {}
    procs = {}
    for kind, command in commands.items():
        log = open(WORK / f"{name}-{kind}.log", "w")
        started[kind] = time.perf_counter()
        procs[kind] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        if not args.parallel:
            procs[kind].wait()
            walls[kind] = time.perf_counter() - started[kind]
    for kind, proc in procs.items():
        proc.wait()
        walls.setdefault(kind, time.perf_counter() - started[kind])
        if proc.returncode != 0:
            print(f"{kind}: training failed, see {WORK / f'{name}-{kind}.log'}", file=sys.stderr)
            return 1
    rows = {}
    for kind, out in runs.items():
        model = out / "model-best"
        scored = subprocess.run(cli("evaluate", model, valid, "--json"), capture_output=True, text=True, check=True)
        result = json.loads(scored.stdout)
        history = json.loads((out / "model-last" / "history.json").read_text())
        rows[kind] = {"f1": result["f1"], "epochs": len(history), "best_epoch": json.loads((model / "metrics.json").read_text()).get("epoch"),
                      "wall_s": round(walls[kind], 1), "size_mb": round(size_mb(model), 2)}
    times: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(3):
        for kind, out in runs.items():
            times[kind].append(tag_seconds(out / "model-best", valid, WORK / f"{name}-{kind}.pred"))
    tokens = sum(1 for line in valid.read_text(encoding="utf-8").splitlines()
                 if line.strip() and not line.startswith("-DOCSTART-"))
    for kind in rows:
        rows[kind]["tag_s"] = round(statistics.median(times[kind]), 2)
        rows[kind]["tokens_per_s"] = round(tokens / statistics.median(times[kind]))
    print(json.dumps(rows, indent=1))
    if args.append:
        shown = " ".join(a.replace(str(ROOT) + "/", "") for a in sys.argv[1:])
        lines = [f"\n## Tagger with and without language-model features: {name} "
                 f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, issue 17)\n",
                 f"Command: `python benchmarks/lm_features.py {shown}` ({os.cpu_count()} cores, load average "
                 f"{os.getloadavg()[0]:.1f} at the end). Validation: {valid.relative_to(ROOT.parent) if valid.is_relative_to(ROOT.parent) else valid}.\n",
                 "| tagger | validation F1 | epochs (best) | training wall s | bundle MB | tagging the validation "
                 "file, end to end s | tokens/s |", "|---|---|---|---|---|---|---|"]
        for kind, r in rows.items():
            lines.append(f"| {kind} LM features | {r['f1']:.2f} | {r['epochs']} ({r['best_epoch']}) | {r['wall_s']} | "
                         f"{r['size_mb']} | {r['tag_s']} | {r['tokens_per_s']:,} |")
        lines.append("\nTraining commands:\n")
        for kind, command in commands.items():
            lines.append(f"- {kind}: `{' '.join(map(str, command[1:])).replace(str(ROOT) + '/', '')}`")
        with RESULTS.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
