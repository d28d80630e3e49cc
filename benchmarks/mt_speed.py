#!/usr/bin/env python3
"""Translation speed from the command line, process start to output written.

Usage::

    python benchmarks/mt_speed.py MODEL [--data ../shared/data/multi30k] [--beams 1 5] [--repeats 3] [--append]

For each beam size, runs ``cli.py predict MODEL --input val.en --output FILE
--beam N`` as a fresh process (so start-up, model loading and any
compilation are included), times it from launch to exit, and reports
sentences/s and target tokens/s (SentencePiece pieces of the output, counted
with the bundle's target tokenizer) and the output's BLEU/chrF against
val.de. ``--append`` adds a section to benchmarks/RESULTS.md. Target for
beam 5 on the 1,014 validation sentences: at most 30 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "multi30k")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--runtime", default="auto", help="auto, lite, numpy or keras")
    parser.add_argument("--repeats", type=int, default=3, help="runs per beam size; the median is reported")
    parser.add_argument("--append", action="store_true", help="append a section to benchmarks/RESULTS.md")
    args = parser.parse_args()

    import sacrebleu

    from lstmtext import bundle as bundle_io
    from lstmtext.tokenizers import load_tokenizer

    bundle = bundle_io.read(args.model)
    target_tok = load_tokenizer(bundle.file("tokenizer/target"))
    source, reference = args.data / "val.en", args.data / "val.de"
    refs = reference.read_text(encoding="utf-8").splitlines()
    rows = []
    walls: dict[int, list[float]] = {beam: [] for beam in args.beams}
    outputs: dict[int, list[str]] = {}
    for _ in range(args.repeats):  # beams interleaved: a busy moment hits each
        for beam in args.beams:
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "out.txt"
                cmd = [sys.executable, str(ROOT / "cli.py"), "predict", str(args.model), "--input", str(source),
                       "--output", str(out), "--beam", str(beam), "--runtime", args.runtime]
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True)
                walls[beam].append(time.perf_counter() - t0)
                hyps = out.read_text(encoding="utf-8").splitlines()
            if outputs.setdefault(beam, hyps) != hyps:
                sys.exit(f"beam {beam}: the output changed between runs")
    for beam in args.beams:
        hyps, wall = outputs[beam], statistics.median(walls[beam])
        tokens = sum(len(x) for x in target_tok.encode_batch(hyps))
        bleu = sacrebleu.corpus_bleu(hyps, [refs]).score
        chrf = sacrebleu.corpus_chrf(hyps, [refs]).score
        lo, hi = min(walls[beam]), max(walls[beam])
        rows.append((beam, len(hyps), wall, lo, hi, len(hyps) / wall, tokens / wall, bleu, chrf))
        print(f"beam {beam}: {len(hyps)} sentences in {wall:.1f} s median of {args.repeats} ({lo:.1f}-{hi:.1f}) "
              f"= {len(hyps) / wall:.1f} sentences/s, {tokens / wall:.0f} target tokens/s; BLEU {bleu:.2f} "
              f"chrF {chrf:.2f}", flush=True)
    if args.append:
        rel = os.path.relpath(args.model, ROOT) if args.model.is_absolute() else str(args.model)
        lines = [f"\n## translate speed: {rel} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n",
                 f"- machine: {os.cpu_count()} cores, shared with other jobs (load average "
                 f"{os.getloadavg()[0]:.1f} at the end)",
                 f"- command: `python benchmarks/mt_speed.py {rel} --beams {' '.join(map(str, args.beams))} "
                 f"--runtime {args.runtime} --repeats {args.repeats}` (each run: `cli.py predict MODEL --input "
                 f"val.en --output FILE --beam N`, process start to exit; median of the runs)",
                 "",
                 "| beam | sentences | median wall s | min | max | sentences/s | target tokens/s | BLEU | chrF |",
                 "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        lines += [f"| {b} | {n} | {w:.1f} | {lo:.1f} | {hi:.1f} | {sps:.1f} | {tps:.0f} | {bl:.2f} | {ch:.2f} |"
                  for b, n, w, lo, hi, sps, tps, bl, ch in rows]
        with open(ROOT / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
