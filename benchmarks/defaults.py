#!/usr/bin/env python3
"""No-flag training next to a tuned recipe, at several data sizes and one budget each.

Usage::

    python benchmarks/defaults.py list
    python benchmarks/defaults.py run CASE [CASE ...] [--budget 10m] [--only default|tuned] [--append]

For each case the data is cut deterministically into ``runs/defaults/data/CASE``
(never into the repository), then trained twice with the same ``--budget``:

- **default**: ``lstmtext train TASK --train ... --valid ... --output ... --budget B``: no other flag;
- **tuned**: the same plus ``--config`` of the benchmark's own recipe in ``benchmarks/recipes`` (the
  shipped model's, or the published one it follows) and the case's ``--set`` values.

Both are scored with ``lstmtext evaluate --json`` on the same validation split (perplexity, entity or
chunk F1, BLEU); the ratio and both commands are printed, and with ``--append`` added to
``benchmarks/RESULTS.md``. A run that fails or diverges (non-finite or worse than uniform) is reported
as such. Runs alternate default/tuned per case, so a busy machine slows both alike.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
WORK = ROOT / "runs" / "defaults"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def _held(key: str, share: int) -> bool:
    """Whether ``key`` falls in the held-out 1/``share`` (a hash, so repeats stay on one side)."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % share == 0


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _sentences(path: Path) -> list[list[str]]:
    """CoNLL blocks (blank-line separated), ``-DOCSTART-`` blocks dropped."""
    out, block = [], []
    for line in _lines(path) + [""]:
        if line.strip():
            block.append(line)
        elif block:
            if not block[0].startswith("-DOCSTART-"):
                out.append(block)
            block = []
    return out


def _write_conll(path: Path, blocks: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\n".join(b) + "\n\n" for b in blocks), encoding="utf-8")
    return path


# ---------------------------------------------------------------- the data of each case
def lm_ptb(n: int | None):
    def prep(d: Path) -> dict:
        train = _lines(DATA / "ptb" / "ptb.train.txt")
        return {"train": _write(d / "train.txt", train[:n] if n else train),
                "valid": DATA / "ptb" / "ptb.valid.txt"}
    return prep


def lm_abc(d: Path) -> dict:
    # Cased news; science.txt has CRLF line ends, kept as they are (the reader must cope).
    lines = [l.rstrip("\r") for f in ("rural.txt", "science.txt") for l in
             (DATA / "abc" / f).read_bytes().decode("utf-8").split("\n")]
    lines = [l for l in lines if l.strip()]
    valid = [l for i, l in enumerate(lines) if i % 20 == 0]
    train = [l for i, l in enumerate(lines) if i % 20 != 0]
    return {"train": _write(d / "train.txt", train), "valid": _write(d / "valid.txt", valid)}


def ner_conll03(n: int | None):
    def prep(d: Path) -> dict:
        blocks = _sentences(DATA / "conll2003" / "train.txt")
        return {"train": _write_conll(d / "train.txt", blocks[:n] if n else blocks),
                "valid": DATA / "conll2003" / "valid.txt"}
    return prep


def chunk_conll2000(d: Path) -> dict:
    blocks = _sentences(DATA / "conll2000" / "train.txt")
    return {"train": _write_conll(d / "train.txt", blocks[:-1000]), "valid": _write_conll(d / "valid.txt", blocks[-1000:])}


def mt_multi30k(n: int | None):
    def prep(d: Path) -> dict:
        en, de = _lines(DATA / "multi30k" / "train.en"), _lines(DATA / "multi30k" / "train.de")
        en, de = (en[:n], de[:n]) if n else (en, de)
        return {"train-source": _write(d / "train.en", en), "train-target": _write(d / "train.de", de),
                "valid-source": DATA / "multi30k" / "val.en", "valid-target": DATA / "multi30k" / "val.de"}
    return prep


def mt_tatoeba(d: Path) -> dict:
    pairs = [l.split("\t") for l in _lines(DATA / "tatoeba-fra-eng" / "fra.txt") if l.count("\t") >= 1]
    # The English side decides the split, so a repeated English sentence never sits on both sides.
    held = [p for p in pairs if _held(p[0], 50)]
    kept = [p for p in pairs if not _held(p[0], 50)]
    held = held[:: max(1, len(held) // 2000)][:2000]
    return {"train-source": _write(d / "train.en", [p[0] for p in kept]),
            "train-target": _write(d / "train.fr", [p[1] for p in kept]),
            "valid-source": _write(d / "valid.en", [p[0] for p in held]),
            "valid-target": _write(d / "valid.fr", [p[1] for p in held])}


@dataclass
class Case:
    task: str
    prep: object
    budget: str
    recipe: str = ""  # the tuned recipe: a file in benchmarks/recipes (given with --config)
    tuned: list[str] = field(default_factory=list)  # --set values on top of it
    note: str = ""


# Tuned recipes: the benchmark's own recipe (the shipped model's, or the published one it follows),
# trained on the same data with the same budget; the budget plans its epochs for both runs.
CASES: dict[str, Case] = {
    "lm-ptb-400": Case("lm", lm_ptb(400), "3m", "ptb-small.toml"),
    "lm-ptb-10k": Case("lm", lm_ptb(10_000), "10m", "ptb-small.toml"),
    "lm-ptb": Case("lm", lm_ptb(None), "60m", "ptb-cpu90.toml"),
    "lm-abc": Case("lm", lm_abc, "30m", "ptb-cpu90.toml", ["tokenizer=unigram", "vocab_size=8000"]),
    "ner-conll03-1000": Case("ner", ner_conll03(1000), "5m", "ner-conll03.toml"),
    "ner-conll03": Case("ner", ner_conll03(None), "30m", "ner-conll03.toml"),
    "chunk-conll2000": Case("ner", chunk_conll2000, "20m", "ner-conll03.toml"),
    "mt-multi30k-5000": Case("translate", mt_multi30k(5000), "10m", "mt-multi30k.toml"),
    "mt-multi30k": Case("translate", mt_multi30k(None), "60m", "mt-multi30k.toml"),
    "mt-tatoeba": Case("translate", mt_tatoeba, "60m", "mt-multi30k.toml"),
}
METRIC = {"lm": ("perplexity", "min"), "ner": ("f1", "max"), "translate": ("bleu", "max")}


def cli(*args) -> list[str]:
    return [sys.executable, str(ROOT / "cli.py"), *map(str, args)]


def train_args(case: Case, data: dict) -> list[str]:
    return [a for k, v in data.items() for a in (f"--{k}", str(v))]


def eval_args(case: Case, data: dict) -> list[str]:
    if case.task == "translate":
        return ["--source", data["valid-source"], "--target", data["valid-target"], "--beam", "5"]
    return [data["valid"]]


def run_one(name: str, case: Case, data: dict, kind: str, budget: str) -> dict:
    out = WORK / "runs" / f"{name}-{kind}"
    sets = [a for s in (case.tuned if kind == "tuned" else []) for a in ("--set", s)]
    if kind == "tuned" and case.recipe:
        sets = ["--config", str(ROOT / "benchmarks" / "recipes" / case.recipe), *sets]
    train = cli("train", case.task, *train_args(case, data), "--output", out, "--overwrite", "--budget", budget,
                "--quiet", *sets)
    t0 = time.perf_counter()
    done = subprocess.run(train, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    row = {"case": name, "kind": kind, "budget": budget, "wall_s": round(wall, 1),
           "train_command": " ".join(map(str, train[2:])).replace(str(ROOT) + "/", "")}
    if done.returncode != 0:
        row["error"] = (done.stderr.strip().splitlines() or ["?"])[-1][:300]
        return row
    evaluate = cli("evaluate", out, *eval_args(case, data), "--json")
    scored = subprocess.run(evaluate, capture_output=True, text=True)
    if scored.returncode != 0:
        row["error"] = (scored.stderr.strip().splitlines() or ["?"])[-1][:300]
        return row
    result = json.loads(scored.stdout)
    key, _ = METRIC[case.task]
    row["score"] = result.get(key)
    row["eval_command"] = " ".join(map(str, evaluate[2:])).replace(str(ROOT) + "/", "")
    try:
        meta = json.loads((out / "model-best" / "config.json").read_text())
        row["config"] = {k: meta["config"][k] for k in ("vocab_size", "hidden_size", "num_layers", "optimizer",
                                                        "lr", "epochs", "batch_size") if k in meta["config"]}
    except (OSError, KeyError, ValueError):
        pass
    return row


def compare(name: str, case: Case, rows: dict) -> str:
    key, mode = METRIC[case.task]
    d, t = rows.get("default", {}), rows.get("tuned", {})
    if "score" not in d or "score" not in t:
        return "incomplete"
    a, b = d["score"], t["score"]
    if a is None or not math.isfinite(a):
        return "default diverged"
    gap = (a - b) / b if mode == "min" else (b - a) / b
    return f"default {'worse' if gap > 0 else 'better'} by {abs(gap) * 100:.1f}% ({'within' if gap <= 0.05 else 'outside'} 5%)"


def append(rows: list[dict], verdicts: dict) -> None:
    lines = [f"\n## No-flag training next to tuned recipes ({time.strftime('%Y-%m-%d')}, `benchmarks/defaults.py`)\n",
             f"Machine: {os.cpu_count()} cores (CPU). Command: `python benchmarks/defaults.py run "
             f"{' '.join(sorted(verdicts))} --append`.\n",
             "| case | run | budget | wall s | score | verdict |", "|---|---|---|---|---|---|"]
    for r in rows:
        score = r.get("score")
        shown = f"{score:.2f}" if isinstance(score, (int, float)) else r.get("error", "-")
        lines.append(f"| {r['case']} | {r['kind']} | {r['budget']} | {r['wall_s']} | {shown} | "
                     f"{verdicts.get(r['case'], '') if r['kind'] == 'tuned' else ''} |")
    lines.append("\nCommands:\n")
    for r in rows:
        lines.append(f"- {r['case']} {r['kind']}: `python cli.py {r['train_command']}`"
                     + (f"; `python cli.py {r['eval_command']}`" if "eval_command" in r else ""))
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    run = sub.add_parser("run")
    run.add_argument("cases", nargs="+", choices=sorted(CASES))
    run.add_argument("--budget", help="override every case's budget")
    run.add_argument("--only", choices=("default", "tuned"))
    run.add_argument("--append", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    if args.command == "list":
        for name, case in CASES.items():
            print(f"{name:18s} {case.task:9s} budget {case.budget:4s} tuned: "
                  f"{' '.join(['--config ' + case.recipe] * bool(case.recipe) + case.tuned) or '(none)'}")
        return 0
    if not DATA.is_dir():
        print(f"benchmark data not found at {DATA}", file=sys.stderr)
        return 2
    rows, verdicts = [], {}
    for name in args.cases:
        case = CASES[name]
        data = case.prep(WORK / "data" / name)
        per = {}
        for kind in ("default", "tuned"):
            if args.only and kind != args.only:
                continue
            row = run_one(name, case, data, kind, args.budget or case.budget)
            print(json.dumps(row), flush=True)
            rows.append(row)
            per[kind] = row
        verdicts[name] = compare(name, case, per)
        print(f"{name}: {verdicts[name]}", flush=True)
    if args.append:
        append(rows, verdicts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
