#!/usr/bin/env python3
"""Tagging speed of a NER bundle on the CoNLL-2003 validation file (51,362 tokens).

Usage::

    python benchmarks/ner_speed.py [--model models/ner-conll03]
        [--data ../shared/data/conll2003/valid.txt] [--repeats 3] [--append-results]

Two figures:

* end to end: ``cli.py predict MODEL --input FILE --output OUT`` as its own
  process, timed from process start until the output file is written
  (Python start, imports, loading the bundle, reading, tagging, writing);
  tokens/s = tokens in the file / wall seconds (target: at least 5,000);
* tagging once loaded: the same sentences through ``Tagger.tag`` inside this
  process, after loading (encoding, BiLSTM, Viterbi, scheme conversion).

The predicted column of the end-to-end output is scored against the gold
column as a check that the fast path tags correctly (entity F1, conlleval
rules). Figures are medians over ``--repeats`` runs; the machine's load
average is printed beside them because the machine is shared.
``--append-results`` appends a section to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def end_to_end(model: Path, data: Path, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one ``predict`` process."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "predict", str(model), "--input", str(data),
                             "--output", str(out)], stderr=subprocess.PIPE, env=env, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(proc.stderr.read().decode(errors="replace"))
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "ner-conll03")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "conll2003" / "valid.txt")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--append-results", action="store_true")
    args = parser.parse_args()

    from lstmtext import bundle as bundle_io
    from lstmtext.ner.api import load
    from lstmtext.ner.data import read_conll
    from lstmtext.ner.metrics import entity_scores

    corpus = read_conll(args.data)
    tokens = corpus.tokens
    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pred.conll"
        for _ in range(args.repeats):
            wall, cpu = end_to_end(args.model, args.data, out)
            walls.append(wall)
            cpus.append(cpu)
        pred = read_conll(out, tag_column=-1)
        gold = read_conll(out, tag_column=-2)
    f1 = entity_scores([s.tags for s in gold.sentences], [s.tags for s in pred.sentences])["f1"]

    t0 = time.perf_counter()
    tagger = load(bundle_io.read(args.model, "ner"))
    load_s = time.perf_counter() - t0
    sentences = [s.tokens for s in corpus.sentences]
    tag_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        tagger.tag(sentences)
        tag_times.append(time.perf_counter() - t0)

    wall, cpu, tag = statistics.median(walls), statistics.median(cpus), statistics.median(tag_times)
    load_avg = os.getloadavg()[0]
    lines = [
        f"tokens {tokens}, sentences {len(sentences)}, load average {load_avg:.2f}, {os.cpu_count()} CPUs",
        f"end to end (process start to output written): {wall:.2f} s wall, {cpu:.2f} s CPU -> "
        f"{tokens / wall:,.0f} tokens/s (target >= 5,000)",
        f"tagging once loaded: {tag:.2f} s -> {tokens / tag:,.0f} tokens/s (bundle load {load_s:.2f} s)",
        f"entity F1 of the end-to-end output: {f1:.2f}",
    ]
    print("\n".join(lines))
    if args.append_results:
        cmd = " ".join(["python", "benchmarks/ner_speed.py", "--model", str(args.model), "--data", str(args.data),
                        "--repeats", str(args.repeats)])
        section = (f"\n## NER tagging speed ({time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
                   f"{platform.machine()})\n\n`{cmd}`\n\n" + "\n".join(f"- {x}" for x in lines) + "\n")
        with open(ROOT / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write(section)


if __name__ == "__main__":
    main()
