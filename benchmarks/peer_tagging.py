#!/usr/bin/env python3
"""Tagging speed of lstmtext against flair, side by side in one run (issue 15).

Usage::

    python benchmarks/peer_tagging.py [--peer-python /work/peervenv/bin/python] [--rounds 5]
        [--model models/ner-conll03] [--data ../shared/data/conll2003/valid.txt] [--train-seconds 240] [--append]

flair runs in its own virtual environment (``--peer-python``; set it up with
benchmarks/peers/README.md), through benchmarks/peers/flair_worker.py. Its
model is flair's BiLSTM-CRF the size of ``models/ner-conll03`` (word
embeddings 100, character BiLSTM features 2 x 50, BiLSTM 200, CRF), trained
for ``--train-seconds`` on the CoNLL-2003 training file the first time (kept
in runs/peers/flair-conll03), so that it predicts realistic spans; its entity
F1 and span count are printed beside the gold count.

Two comparisons, rounds alternating lstmtext / flair on one thread / flair on
torch's default threads, medians and ratios (flair seconds / lstmtext seconds):

* once loaded: every sentence of the file tagged in memory by a loaded
  tagger (lstmtext ``Tagger.tag``; flair ``SequenceTagger.predict``, batches of
  256 sentences as lstmtext's); flair runs in a worker process that answers
  one round at a time;
* end to end: ``cli.py predict MODEL --input FILE --output OUT`` against
  ``flair_worker.py predict``, each a fresh process, from launch to exit.

lstmtext runs as users get it (its default threads). ``--peer-threads 1``
leaves out flair on torch's default threads: on this shared 2-core machine at
load 8 its threads spin-wait and one round took minutes. ``--append`` appends the
medians, ratios and this command to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from peers.run import peer_env, report, timed  # noqa: E402
WORKER = ROOT / "benchmarks" / "peers" / "flair_worker.py"


class Worker:
    """A flair_worker.py ``serve`` process: one tagging round per request."""

    def __init__(self, python: str, model: Path, data: Path, threads: int):
        self.proc = subprocess.Popen([python, str(WORKER), "serve", "--model", str(model), "--data", str(data),
                                      "--threads", str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=peer_env(threads), text=True)
        self.info = self.ask(None)

    def ask(self, cmd: str | None) -> dict:
        if cmd is not None:
            self.proc.stdin.write(cmd + "\n")
            self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        sys.exit("the flair worker stopped")

    def close(self) -> None:
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-python", default="/work/peervenv/bin/python")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "ner-conll03")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "conll2003" / "valid.txt")
    parser.add_argument("--train", type=Path, default=ROOT.parent / "shared" / "data" / "conll2003" / "train.txt")
    parser.add_argument("--peer-dir", type=Path, default=ROOT / "runs" / "peers" / "flair-conll03")
    parser.add_argument("--train-seconds", type=float, default=240)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--peer-threads", type=int, nargs="+", default=[1, 0],
                        help="torch threads of the flair runs (0: torch's default)")
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()

    from lstmtext import bundle as bundle_io
    from lstmtext.ner.api import load
    from lstmtext.ner.data import read_conll
    from lstmtext.ner.metrics import entity_scores

    peer_model = args.peer_dir / "tagger.pt"
    if not peer_model.exists():
        print(f"training the flair peer for {args.train_seconds:.0f} s ...", flush=True)
        # One torch thread: on this shared machine two trained 40x slower (6 steps in 254 s against 23 in 15 s).
        out = subprocess.run([args.peer_python, str(WORKER), "train", "--train", str(args.train), "--valid",
                              str(args.data), "--out", str(args.peer_dir), "--seconds", str(args.train_seconds),
                              "--threads", "1"], check=True, capture_output=True, text=True, env=peer_env(1)).stdout
        (args.peer_dir / "train.json").write_text(out.strip().splitlines()[-1] + "\n")
    trained = json.loads((args.peer_dir / "train.json").read_text())

    corpus = read_conll(args.data)
    sentences = [s.tokens for s in corpus.sentences]
    gold = [s.tags for s in corpus.sentences]
    tokens = corpus.tokens
    tagger = load(bundle_io.read(args.model, "ner"))
    ours_tags = tagger.tag(sentences)
    workers = {name: Worker(args.peer_python, peer_model, args.data, n)
               for name, n in (("flair 1 thread", 1), ("flair default threads", 0)) if n in args.peer_threads}
    loaded: dict[str, list[float]] = {"lstmtext": [], "flair 1 thread": [], "flair default threads": []}
    for w in workers.values():
        w.ask("round")  # warm-up
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        tagger.tag(sentences)
        loaded["lstmtext"].append(time.perf_counter() - t0)
        for name, w in workers.items():
            loaded[name].append(w.ask("round")["seconds"])
    flair_tags = next(iter(workers.values())).ask("tags")["tags"]
    threads = {name: w.info["threads"] for name, w in workers.items()}
    for w in workers.values():
        w.close()

    e2e: dict[str, list[float]] = {k: [] for k in loaded}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.conll"
        ours = [sys.executable, str(ROOT / "cli.py"), "predict", str(args.model), "--input", str(args.data),
                "--output", str(out)]
        for _ in range(args.rounds):
            e2e["lstmtext"].append(timed(ours, dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")))
            for name, n in (("flair 1 thread", 1), ("flair default threads", 0)):
                if n not in args.peer_threads:
                    continue
                e2e[name].append(timed([args.peer_python, str(WORKER), "predict", "--model", str(peer_model),
                                        "--input", str(args.data), "--output", str(out), "--threads", str(n)],
                                       peer_env(n)))

    def quality(pred):
        return entity_scores(gold, pred)["f1"], sum(len(_spans(p)) for p in pred)

    ours_f1, ours_n = quality(ours_tags)
    flair_f1, flair_n = quality(flair_tags)
    gold_n = sum(len(_spans(g)) for g in gold)
    lines = [f"{tokens:,} tokens, {len(sentences):,} sentences; {os.cpu_count()} CPUs, load average "
             f"{os.getloadavg()[0]:.1f} at the end; {args.rounds} rounds each, alternating",
             f"flair peer: {trained['parameters']:,} parameters, trained {trained['seconds']:.0f} s "
             f"({trained['epochs']:.2f} epochs, {trained['threads']} threads): entity F1 {flair_f1:.2f}, "
             f"{flair_n:,} spans predicted (gold {gold_n:,}); lstmtext ({args.model.name}): F1 {ours_f1:.2f}, "
             f"{ours_n:,} spans"]
    table = ["| measure | lstmtext s | flair 1 thread s | ratio | flair default threads s | ratio |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, res in (("once loaded", loaded), ("end to end", e2e)):
        med = {k: statistics.median(v) if v else None for k, v in res.items()}
        cells = [f"{med['lstmtext']:.2f} ({tokens / med['lstmtext']:,.0f} tokens/s)"]
        for name in ("flair 1 thread", "flair default threads"):
            extra = f" ({threads.get(name)} threads)" if name == "flair default threads" else ""
            cells += ([f"{med[name]:.2f}{extra}", f"{med[name] / med['lstmtext']:.2f}x"] if med[name] else
                      ["not run", ""])
        table.append(f"| {label} | " + " | ".join(cells) + " |")
    report("Tagging against flair", "peer_tagging.py", lines, table, args.append)
    return 0


def _spans(tags):
    from lstmtext.ner import schemes

    return schemes.spans(tags)


if __name__ == "__main__":
    sys.exit(main())
