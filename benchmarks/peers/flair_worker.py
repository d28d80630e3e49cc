#!/usr/bin/env python3
"""The flair side of benchmarks/peer_tagging.py; runs in the peers' own venv (see benchmarks/peers/README.md).

    python flair_worker.py train --train train.txt --valid valid.txt --out DIR [--seconds 240]
    python flair_worker.py serve --model DIR/tagger.pt --data valid.txt [--threads 1]
    python flair_worker.py predict --model DIR/tagger.pt --input valid.txt --output pred.conll [--threads 1]

The model is flair's BiLSTM-CRF the size of models/ner-conll03: trainable word
embeddings (100, every training word), character BiLSTM features (2 x 50),
one BiLSTM layer of 200 units per direction and a CRF over BIOES tags.
``train`` runs Adam (rate 0.002 on the per-token mean loss, batch 32,
clipping 5) for a fixed time, so the model predicts realistic spans without
hours of training. flair's own default, SGD at 0.1 on the summed loss, is
tuned for pretrained embeddings: with these randomly initialised ones it
learned nothing useful in the time (training-set F1 0.01 after 2.9 epochs,
10,925 spans predicted on the validation file against 5,942 gold), where Adam
reached training-set F1 0.56 on 600 sentences in 5 short epochs. ``serve`` loads the model and the sentences once, then
answers ``round`` (tag every sentence, reply with the seconds taken) and
``tags`` (reply with the predicted IOB2 tags) on standard input, one JSON
line each, so the caller can alternate its own rounds with flair's.
CoNLL files are read here (first column words, last column tags,
``-DOCSTART-`` lines and blank lines between sentences).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def read_conll(path):
    sentences, words, tags = [], [], []
    for line in open(path, encoding="utf-8"):
        parts = line.split()
        if not parts or parts[0] == "-DOCSTART-":
            if words:
                sentences.append((words, tags))
                words, tags = [], []
            continue
        words.append(parts[0])
        tags.append(parts[-1])
    if words:
        sentences.append((words, tags))
    return sentences


def iob_spans(tags):
    """(start, end, type) of IOB1/IOB2 tags."""
    spans, start, kind = [], None, None
    for i, t in enumerate(tags + ["O"]):
        head, _, typ = t.partition("-")
        if start is not None and (head in ("O", "B") or typ != kind):
            spans.append((start, i, kind))
            start = None
        if head in ("B", "I") and start is None:
            start, kind = i, typ
    return spans


def flair_sentences(data, labelled=True):
    from flair.data import Sentence

    out = []
    for words, tags in data:
        s = Sentence(words)
        if labelled:
            for a, b, typ in iob_spans(tags):
                s[a:b].add_label("ner", typ)
        out.append(s)
    return out


def predicted_tags(sentences):
    out = []
    for s in sentences:
        tags = ["O"] * len(s)
        for span in s.get_spans("predicted"):
            for j, tok in enumerate(span.tokens):
                tags[tok.idx - 1] = ("B-" if j == 0 else "I-") + span.tag
        out.append(tags)
    return out


def set_threads(n):
    import torch

    if n:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def train(args):
    import torch
    from flair.data import Corpus, Dictionary
    from flair.datasets import SentenceDataset
    from flair.embeddings import CharacterEmbeddings, OneHotEmbeddings, StackedEmbeddings
    from flair.models import SequenceTagger

    threads = set_threads(args.threads)
    torch.manual_seed(1)
    train_s = flair_sentences(read_conll(args.train))
    valid_s = flair_sentences(read_conll(args.valid))
    corpus = Corpus(train=SentenceDataset(train_s), dev=SentenceDataset(valid_s[:10]),
                    test=SentenceDataset(valid_s[:10]), sample_missing_splits=False)
    tag_dict = corpus.make_label_dictionary("ner", add_unk=False)
    words = OneHotEmbeddings.from_corpus(corpus, field="text", embedding_length=100, min_freq=1)
    char_dict = Dictionary()  # from the training words (flair's default list is a download)
    for s in train_s:
        for tok in s:
            for ch in tok.text:
                char_dict.add_item(ch)
    chars = CharacterEmbeddings(path_to_char_dict=char_dict, char_embedding_dim=30, hidden_size_char=50)
    model = SequenceTagger(hidden_size=200, embeddings=StackedEmbeddings([words, chars]), tag_dictionary=tag_dict,
                           tag_type="ner", use_crf=True, rnn_layers=1, tag_format="BIOES")
    opt = torch.optim.Adam(model.parameters(), lr=0.002)
    model.train()
    t0, steps, seen = time.perf_counter(), 0, 0
    import random

    rng = random.Random(1)
    while time.perf_counter() - t0 < args.seconds:
        order = list(range(len(train_s)))
        rng.shuffle(order)
        for k in range(0, len(order), 32):
            batch = [train_s[i] for i in order[k: k + 32]]
            opt.zero_grad()
            loss, count = model.forward_loss(batch)
            (loss / max(count, 1)).backward()  # flair sums over tokens; Adam wants the mean
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            for s in batch:
                s.clear_embeddings()
            steps += 1
            seen += len(batch)
            if time.perf_counter() - t0 >= args.seconds:
                break
    model.eval()
    os.makedirs(args.out, exist_ok=True)
    model.save(os.path.join(args.out, "tagger.pt"))
    print(json.dumps({"steps": steps, "sentences": seen, "epochs": seen / len(train_s),
                      "seconds": time.perf_counter() - t0, "threads": threads,
                      "parameters": sum(p.numel() for p in model.parameters())}))


def load(path):
    """The saved tagger, with its stacked embeddings' names as they were in training.

    flair 0.15.1 saves OneHotEmbeddings without the ``0-`` prefix that StackedEmbeddings gave
    it, and a token's stacked vector is concatenated in the sorted order of the names: after
    loading, ``1-Char`` sorted before ``one-hot-text``, so the network read its character
    features where it had learned word features (F1 2.64 on CoNLL-2003 validation, where the
    same model scored far higher in memory; a words-only model, with nothing to swap, was
    unaffected).
    """
    from flair.embeddings import StackedEmbeddings
    from flair.models import SequenceTagger

    model = SequenceTagger.load(path)
    if isinstance(model.embeddings, StackedEmbeddings):
        for i, emb in enumerate(model.embeddings.embeddings):
            if not emb.name.startswith(f"{i}-"):
                emb.name = f"{i}-{emb.name}"
    return model


def tag_all(model, sentences, batch):
    for s in sentences:
        s.remove_labels("predicted")
    model.predict(sentences, mini_batch_size=batch, label_name="predicted")


def serve(args):
    threads = set_threads(args.threads)
    t0 = time.perf_counter()
    model = load(args.model)
    data = read_conll(args.data)
    sentences = flair_sentences(data, labelled=False)
    print(json.dumps({"ready": True, "load_s": time.perf_counter() - t0, "threads": threads}), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "round":
            t0 = time.perf_counter()
            tag_all(model, sentences, args.batch)
            print(json.dumps({"seconds": time.perf_counter() - t0}), flush=True)
        elif cmd == "tags":
            print(json.dumps({"tags": predicted_tags(sentences)}), flush=True)
        elif cmd == "quit":
            break


def predict(args):
    set_threads(args.threads)
    model = load(args.model)
    data = read_conll(args.input)
    sentences = flair_sentences(data, labelled=False)
    tag_all(model, sentences, args.batch)
    with open(args.output, "w", encoding="utf-8") as fh:
        for (words, gold), tags in zip(data, predicted_tags(sentences)):
            fh.write("".join(f"{w} {g} {t}\n" for w, g, t in zip(words, gold, tags)) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--train", required=True)
    t.add_argument("--valid", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--seconds", type=float, default=240)
    for name in ("serve", "predict"):
        s = sub.add_parser(name)
        s.add_argument("--model", required=True)
        s.add_argument("--batch", type=int, default=256)
        if name == "serve":
            s.add_argument("--data", required=True)
        else:
            s.add_argument("--input", required=True)
            s.add_argument("--output", required=True)
    for s in sub.choices.values():
        s.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args()
    {"train": train, "serve": serve, "predict": predict}[args.cmd](args)


if __name__ == "__main__":
    main()
