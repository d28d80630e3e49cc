#!/usr/bin/env python3
"""Size and quality of a bundle's LiteRT parts at each quantisation.

Usage::

    python benchmarks/quantize.py lm models/lm-ptb ../shared/data/ptb/ptb.valid.txt
    python benchmarks/quantize.py ner models/ner-conll03 ../shared/data/conll2003/valid.txt
    python benchmarks/quantize.py translate runs/mt-multi30k --source val.en --target val.de
        [--modes none float16 dynamic] [--append-results]

For each mode it runs ``cli.py export MODEL --format litert --quantize MODE``
into a temporary directory and scores the export with ``cli.py evaluate ...
--runtime lite --json`` (the LiteRT parts themselves), next to the bundle's
own score with its default runtime. Reported: the parts' total size and the
headline metric (perplexity, entity F1 or BLEU) and its change.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADLINE = {"lm": "perplexity", "ner": "f1", "translate": "bleu"}


def cli(*args: str) -> str:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True, env=env,
                       cwd=ROOT)
    if r.returncode != 0:
        sys.exit(f"cli.py {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task", choices=sorted(HEADLINE))
    parser.add_argument("model", type=Path)
    parser.add_argument("data", nargs="?", type=Path)
    parser.add_argument("--source", type=Path)
    parser.add_argument("--target", type=Path)
    parser.add_argument("--modes", nargs="+", default=["none", "float16", "dynamic"])
    parser.add_argument("--append-results", action="store_true")
    args = parser.parse_args()
    data = (["--source", str(args.source), "--target", str(args.target)] if args.task == "translate"
            else [str(args.data)])
    key = HEADLINE[args.task]
    rows = []
    t0 = time.time()
    base = json.loads(cli("evaluate", str(args.model), *data, "--json"))[key]
    rows.append(("bundle (default runtime)", None, base))
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes:
            out = Path(tmp) / mode
            cli("export", str(args.model), "--format", "litert", "--quantize", mode, "--output", str(out))
            size = sum(f.stat().st_size for f in (out / "lite").iterdir() if f.suffix == ".tflite")
            score = json.loads(cli("evaluate", str(out), *data, "--runtime", "lite", "--json"))[key]
            rows.append((f"LiteRT parts, --quantize {mode}", size, score))
    lines = [f"| parts | size MB | {key} | change |", "|---|---|---|---|"]
    lines += [f"| {name} | {'' if size is None else f'{size / 1e6:.1f}'} | {score:.2f} | {score - base:+.2f} |"
              for name, size, score in rows]
    print("\n".join(lines))
    print(f"({time.time() - t0:.0f} s)")
    if args.append_results:
        rel = lambda p: os.path.relpath(p, ROOT) if p else ""  # noqa: E731
        cmd = " ".join(["python benchmarks/quantize.py", args.task, rel(args.model),
                        *(rel(a) if isinstance(a, Path) else a for a in
                          ([args.data] if args.data else ["--source", args.source, "--target", args.target]))])
        section = [f"\n## LiteRT quantisation: {args.task} {rel(args.model)} "
                   f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n", f"- command: `{cmd}`", ""] + lines
        with open(ROOT / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write("\n".join(section) + "\n")


if __name__ == "__main__":
    main()
