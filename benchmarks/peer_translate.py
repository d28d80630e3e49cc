#!/usr/bin/env python3
"""Translation speed of lstmtext against OpenNMT-py, side by side in one run (issue 15).

Usage::

    python benchmarks/peer_translate.py [--peer-bin /work/peervenv/bin] [--rounds 3] [--beams 1 5]
        [--model models/mt-multi30k-en-de] [--data ../shared/data/multi30k] [--train-seconds 300] [--append]

OpenNMT-py runs from its own virtual environment (``--peer-bin``, see
benchmarks/peers/README.md). Its model has the shipped translator's sizes
(embeddings 256, a 2-layer bidirectional LSTM encoder of 2 x 256, a 1-layer
LSTM decoder of 512 with Luong "general" attention and input feeding, dropout
0.3) over the same SentencePiece pieces (the bundle's tokenizers, applied here
to write piece files). OpenNMT-py has no projection before a tied output
layer, so its output layer is a 512 x V product where lstmtext's is 512 x 256
plus 256 x V: the multiply-adds per hypothesis step of each are printed. It
is trained for ``--train-seconds`` the first time (kept in
runs/peers/onmt-multi30k), long enough that it ends its sentences like a real
model; output lengths, BLEU and the share of outputs that hit the length limit
are printed for both.

Rounds alternate lstmtext / OpenNMT-py on one thread / OpenNMT-py on torch's
default threads, each a fresh process from launch to exit over Multi30k
val.en (``cli.py predict MODEL --input val.en --output OUT --beam N`` against
``onmt_translate -model M -src val.pieces -beam_size N -batch_size 128``);
lstmtext runs as users get it (its default threads). Medians and ratios (peer
seconds / lstmtext seconds); ``--append`` adds them to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
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


CONFIG = """\
save_data: {d}/prep
src_vocab: {d}/vocab.txt
tgt_vocab: {d}/vocab.txt
share_vocab: true
src_vocab_size: 9000
tgt_vocab_size: 9000
data:
  corpus_1:
    path_src: {d}/train.src
    path_tgt: {d}/train.tgt
save_model: {d}/model
save_checkpoint_steps: 25
num_workers: 0
bucket_size: 20000
keep_checkpoint: 2
train_steps: 1000000
valid_steps: 1000000
report_every: 50
seed: 1
encoder_type: brnn
decoder_type: rnn
rnn_type: LSTM
enc_layers: 2
dec_layers: 1
enc_hid_size: 512
dec_hid_size: 512
word_vec_size: 256
global_attention: general
input_feed: 1
bridge: true
dropout: [0.3]
optim: adam
learning_rate: 0.001
max_grad_norm: 5
batch_type: sents
batch_size: 64
param_init: 0.1
world_size: 1
gpu_ranks: []
"""


def prepare(args, bundle_dir: Path, d: Path) -> None:
    """Piece files, vocabulary and a briefly trained OpenNMT-py model in ``d``."""
    from lstmtext.tokenizers import load_tokenizer

    d.mkdir(parents=True, exist_ok=True)
    src_tok = load_tokenizer(bundle_dir / "tokenizer" / "source")
    tgt_tok = load_tokenizer(bundle_dir / "tokenizer" / "target")
    for name, tok, path in (("train.src", src_tok, "train.en"), ("train.tgt", tgt_tok, "train.de"),
                            ("val.src", src_tok, "val.en")):
        lines = (args.data / path).read_text(encoding="utf-8").splitlines()
        pieces = [" ".join(tok.id_to_piece(i) for i in ids) for ids in tok.encode_batch(lines)]
        (d / name).write_text("\n".join(pieces) + "\n", encoding="utf-8")
    (d / "config.yaml").write_text(CONFIG.format(d=d))
    bin_ = Path(args.peer_bin)
    subprocess.run([str(bin_ / "onmt_build_vocab"), "-config", str(d / "config.yaml"), "-n_sample", "-1"],
                   check=True, capture_output=True, env=peer_env(0))
    print(f"training the OpenNMT-py peer for {args.train_seconds:.0f} s ...", flush=True)
    log = open(d / "train.log", "w")
    # One torch thread: on this shared machine torch's spinning second thread slowed training tenfold.
    proc = subprocess.Popen([str(bin_ / "onmt_train"), "-config", str(d / "config.yaml")], stdout=log,
                            stderr=subprocess.STDOUT, env=peer_env(1))
    t0 = time.perf_counter()
    try:
        proc.wait(timeout=args.train_seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    seconds = time.perf_counter() - t0
    ckpts = sorted(d.glob("model_step_*.pt"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    if not ckpts:
        sys.exit(f"OpenNMT-py saved no checkpoint in {args.train_seconds:.0f} s: see {d / 'train.log'}")
    steps = int(ckpts[-1].stem.rsplit("_", 1)[1])
    ckpts[-1].rename(d / "peer.pt")
    (d / "train.json").write_text(json.dumps({"steps": steps, "batch": 64, "seconds": seconds,
                                              "epochs": steps * 64 / 29000}) + "\n")


def lstmtext_macs(c: dict, vocab: int) -> int:
    """Multiply-adds per hypothesis step of the lstmtext decoder (attention over 13 source pieces)."""
    e, u, m = c["embedding_dim"], c["decoder_units"], 2 * c["encoder_units"]
    out = (u * e + e * vocab) if c["tie_embeddings"] else u * vocab
    return (e + u + u) * 4 * u + u * m + 2 * 13 * m + (u + m) * u + out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-bin", default="/work/peervenv/bin")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "mt-multi30k-en-de")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "multi30k")
    parser.add_argument("--peer-dir", type=Path, default=ROOT / "runs" / "peers" / "onmt-multi30k")
    parser.add_argument("--train-seconds", type=float, default=300)
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peer-threads", type=int, nargs="+", default=[1, 0],
                        help="torch threads of the OpenNMT-py runs (0: torch's default)")
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()

    import sacrebleu

    from lstmtext import bundle as bundle_io
    from lstmtext.tokenizers import load_tokenizer

    bundle = bundle_io.read(args.model)
    d = args.peer_dir.resolve()
    if not (d / "peer.pt").exists():
        prepare(args, bundle.path, d)
    trained = json.loads((d / "train.json").read_text())
    tgt_tok = load_tokenizer(bundle.file("tokenizer/target"))
    refs = (args.data / "val.de").read_text(encoding="utf-8").splitlines()
    src_tok = load_tokenizer(bundle.file("tokenizer/source"))
    src_lens = [len(x) for x in src_tok.encode_batch((args.data / "val.en").read_text(encoding="utf-8").splitlines())]
    systems = ["lstmtext", "OpenNMT-py 1 thread", "OpenNMT-py default threads"]
    walls = {(s, b): [] for s in systems for b in args.beams}
    outputs: dict[tuple[str, int], list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for beam in args.beams:
                out = Path(tmp) / f"ours{beam}.txt"
                walls[("lstmtext", beam)].append(timed(
                    [sys.executable, str(ROOT / "cli.py"), "predict", str(args.model), "--input",
                     str(args.data / "val.en"), "--output", str(out), "--beam", str(beam)],
                    dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")))
                outputs[("lstmtext", beam)] = out.read_text(encoding="utf-8").splitlines()
                for name, threads in (("OpenNMT-py 1 thread", 1), ("OpenNMT-py default threads", 0)):
                    if threads not in args.peer_threads:
                        continue
                    pout = Path(tmp) / f"peer{beam}.txt"
                    walls[(name, beam)].append(timed(
                        [str(Path(args.peer_bin) / "onmt_translate"), "-model", str(d / "peer.pt"), "-src",
                         str(d / "val.src"), "-output", str(pout), "-beam_size", str(beam), "-batch_size", "128",
                         "-batch_type", "sents", "-max_length", "100"], peer_env(threads)))
                    pieces = pout.read_text(encoding="utf-8").splitlines()
                    outputs[(name, beam)] = pieces
    c = bundle.config
    peer_macs = (256 + 512 + 512) * 4 * 512 + 512 * 512 + 2 * 13 * 512 + 1024 * 512 + 512 * tgt_tok.vocab_size
    lines = [f"Multi30k val.en, {len(refs):,} sentences; {os.cpu_count()} CPUs, load average "
             f"{os.getloadavg()[0]:.1f} at the end; {args.rounds} rounds, alternating; multiply-adds per hypothesis "
             f"step: lstmtext {lstmtext_macs(c, tgt_tok.vocab_size) / 1e6:.1f} M, OpenNMT-py {peer_macs / 1e6:.1f} M",
             f"OpenNMT-py peer: trained {trained['seconds']:.0f} s ({trained['steps']} steps of 64 sentences, "
             f"{trained['epochs']:.2f} epochs) on the bundle's pieces"]
    table = ["| beam | lstmtext s | OpenNMT-py 1 thread s | ratio | OpenNMT-py default threads s | ratio |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for beam in args.beams:
        med = {s: statistics.median(walls[(s, beam)]) if walls[(s, beam)] else None for s in systems}
        cells = [f"{med['lstmtext']:.1f}"]
        for name in systems[1:]:
            cells += [f"{med[name]:.1f}", f"{med[name] / med['lstmtext']:.2f}x"] if med[name] else ["not run", ""]
        table.append(f"| {beam} | " + " | ".join(cells) + " |")
        ours = outputs[("lstmtext", beam)]
        peer_pieces = outputs.get(("OpenNMT-py 1 thread", beam)) or outputs[("OpenNMT-py default threads", beam)]
        peer_text = ["".join(p.split()).replace("\u2581", " ").strip() for p in peer_pieces]
        ours_len = [len(x) for x in tgt_tok.encode_batch(ours)]
        peer_len = [len(p.split()) for p in peer_pieces]
        limit = sum(n >= 100 for n in peer_len)
        lines.append(
            f"beam {beam}: output pieces per sentence lstmtext {statistics.mean(ours_len):.1f}, OpenNMT-py "
            f"{statistics.mean(peer_len):.1f} (source {statistics.mean(src_lens):.1f}; {limit} peer outputs at the "
            f"100-piece limit); BLEU lstmtext {sacrebleu.corpus_bleu(ours, [refs]).score:.2f}, OpenNMT-py "
            f"{sacrebleu.corpus_bleu(peer_text, [refs]).score:.2f}")
    report("Translation against OpenNMT-py", "peer_translate.py", lines, table, args.append)
    return 0


if __name__ == "__main__":
    sys.exit(main())
