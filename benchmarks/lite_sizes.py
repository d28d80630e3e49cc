"""The tagger's LiteRT part against the NumPy runtime, by input size.

    python benchmarks/lite_sizes.py [--model DIR ...] [--lengths 10 25 50 100 200 400 800]
        [--batches 1 8] [--rounds 3] [--append]

Each model needs a LiteRT part (``lstmtext export MODEL -f litert -o DIR``).
Random sequences (residues for a character tagger, words from a fixed
sentence for a word tagger) of each length, in batches of each size, tagged by
both runtimes in one process, alternating, ``--rounds`` times; medians and the
ratio.  ``--runtime auto`` picks LiteRT up to
:data:`lstmtext.lite.runtime.LITE_MAX_CELLS` padded tokens a batch, from this
table.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = "the European Commission said on Thursday it disagreed with German advice to consumers".split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, nargs="+", required=True)
    parser.add_argument("--lengths", type=int, nargs="+", default=[10, 25, 50, 100, 200, 400, 800])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()

    from lstmtext import bundle as bundle_io
    from lstmtext.lite.runtime import LITE_MAX_CELLS
    from lstmtext.ner.tagger import Tagger

    rng = random.Random(0)
    rows = []
    for model in args.model:
        b = bundle_io.read(model, "ner")
        taggers = {r: Tagger(b, r) for r in ("lite", "numpy")}
        if taggers["lite"].runtime != "lite":
            sys.exit(f"{model}: no LiteRT part (lstmtext export {model} -f litert -o DIR)")
        chars = b.config.get("input") == "chars"
        alphabet = [s for s in taggers["numpy"].vocab.words if len(s) == 1 and s.isalpha()] or list("ACDEFGHIKLMNPQRSTVWY")
        for n in args.lengths:
            for bs in args.batches:
                batch = [("".join(rng.choice(alphabet) for _ in range(n)) if chars
                          else [rng.choice(WORDS) for _ in range(n)]) for _ in range(bs)]
                times = {r: [] for r in taggers}
                for _ in range(args.rounds):
                    for r, t in taggers.items():
                        t0 = time.perf_counter()
                        t.tag(batch)
                        times[r].append(time.perf_counter() - t0)
                lite, numpy_ = statistics.median(times["lite"]), statistics.median(times["numpy"])
                rows.append((model.name, "characters" if chars else "words", bs, n, lite, numpy_))
                print(f"{model.name} batch {bs} x {n}: LiteRT {lite * 1e3:.1f} ms, NumPy {numpy_ * 1e3:.1f} ms, "
                      f"LiteRT/NumPy {lite / numpy_:.2f}", flush=True)
    load = os.getloadavg()[0]
    lines = [f"## LiteRT against NumPy by input size ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             f"`python benchmarks/lite_sizes.py --model {' '.join(map(str, args.model))} --lengths "
             f"{' '.join(map(str, args.lengths))} --batches {' '.join(map(str, args.batches))} --rounds {args.rounds}`",
             "", f"- {os.cpu_count()} CPUs, load average {load:.1f} at the end; {args.rounds} rounds, alternating, "
             f"medians; `--runtime auto` uses LiteRT up to {LITE_MAX_CELLS} padded tokens a batch", "",
             "| model | input | batch x length | LiteRT ms | NumPy ms | LiteRT / NumPy |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {m} | {k} | {bs} x {n} | {lt * 1e3:.1f} | {nt * 1e3:.1f} | {lt / nt:.2f} |"
              for m, k, bs, n, lt, nt in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
