"""Values for the config keys left to the data (``auto``), and the summary printed before training.

Every key whose best value depends on the training data (vocabulary size,
width, depth, dropout, optimizer and learning rate, batch size, epochs,
patience) defaults to ``"auto"`` in the task's config dataclass. Once the
training data is read, and before the model is built, the task computes the
data's statistics and calls its rule here:

- :func:`lm_values` for the language model (from :class:`TextStats`),
- :func:`ner_values` for the tagger (from :class:`TaggedStats`),
- :func:`translate_values` for the translator (from :class:`ParallelStats`).

Each rule returns ``{key: Choice(value, reason)}`` for every key it can
choose; :func:`resolve` replaces only the keys still ``"auto"``, so values
from ``--config`` and ``--set`` always win, and a rule may build on them
(``--set optimizer=sgd`` with an auto learning rate gets SGD's rate). The
tables below come from the experiments in ``benchmarks/AUTO_DEFAULTS.md``
(several data sizes per task, a few settings per size).

:func:`summary` is the one block printed before training: data statistics,
each auto value with its reason and an estimated time per epoch
(:func:`epoch_seconds`: a FLOP count over a throughput measured on this
project's 2-core CPU; ``--budget`` measures the real throughput).

Importing this module is cheap: no TensorFlow.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple

from lstmtext.config import auto_keys, is_auto


class Choice(NamedTuple):
    """An auto value and why it was chosen."""

    value: Any
    reason: str


UNK_WORD = "<unk>"


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'s' * (count != 1)}"


# ---------------------------------------------------------------- statistics
@dataclass
class TextStats:
    """Word-level statistics of plain text (whitespace words).

    Attributes:
        lines: Non-blank lines.
        words: Whitespace words.
        types: Distinct words.
        types_twice: Distinct words seen at least twice.
        chars: Distinct characters (spaces excluded).
        unk: Words written ``<unk>`` (text with a closed vocabulary, as PTB).
        tokens: Predicted tokens once the text is tokenized (a language
            model's pieces plus one end-of-line a line), else ``None``.
    """

    lines: int = 0
    words: int = 0
    types: int = 0
    types_twice: int = 0
    chars: int = 0
    unk: int = 0
    tokens: int | None = None  # the tokenizer's pieces plus end-of-lines, once known

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> "TextStats":
        """Count ``lines``."""
        counts: collections.Counter = collections.Counter()
        chars: set[str] = set()
        n = 0
        for line in lines:
            words = line.split()
            if words:
                n += 1
                counts.update(words)
                chars.update(line)
        chars -= set(" \t\r\n\f\v")
        return cls(lines=n, words=sum(counts.values()), types=len(counts),
                   types_twice=sum(1 for c in counts.values() if c >= 2), chars=len(chars),
                   unk=counts.get(UNK_WORD, 0))

    def describe(self) -> str:
        unk = f", {self.unk:,} written <unk>" if self.unk else ""
        return (f"{_n(self.lines, 'line')}, {_n(self.words, 'word')}, {_n(self.types, 'word type')} "
                f"({self.types_twice:,} seen twice or more), {_n(self.chars, 'character')}{unk}")

    @property
    def closed_vocabulary(self) -> bool:
        """Whether the text already writes its rare words as ``<unk>`` (at least 1 word in 1,000)."""
        return self.unk >= max(1, self.words // 1000)


@dataclass
class TaggedStats:
    """Statistics of tagged sentences (``(tokens, tags)``; tags in any BIO-like scheme).

    Attributes:
        sentences: Sentences.
        tokens: Tokens.
        types: Distinct tokens (lower-cased, digits as 0: what the tagger looks up).
        types_twice: Of those, seen at least twice.
        entities: Entity mentions (spans read as conlleval reads them).
        entity_types: Distinct entity types.
        longest: Tokens in the longest sentence.
        labels: Distinct labels when they are per-token labels (part of
            speech, residue states: not spans), else 0.
    """

    sentences: int = 0
    tokens: int = 0
    types: int = 0
    types_twice: int = 0
    entities: int = 0
    entity_types: int = 0
    longest: int = 0
    labels: int = 0  # distinct per-token labels; 0 for span labels

    @classmethod
    def from_sentences(cls, sentences: Iterable[tuple[list[str], list[str]]]) -> "TaggedStats":
        """Count ``(tokens, tags)`` pairs (tags in any scheme)."""
        from lstmtext.ner.schemes import spans

        counts: collections.Counter = collections.Counter()
        n = tokens = entities = longest = 0
        types: set[str] = set()
        labels: set[str] = set()
        per_token = False
        for words, tags in sentences:
            n += 1
            tokens += len(words)
            longest = max(longest, len(words))
            counts.update("".join("0" if ch.isdigit() else ch for ch in w.lower()) for w in words)
            labels.update(t for t in tags if t is not None)
            if per_token:
                continue
            try:
                found = spans([t if t is not None else "O" for t in tags])
            except ValueError:  # per-token labels (part of speech, residue states): no spans
                per_token, entities = True, 0
                types.clear()
                continue
            entities += len(found)
            types.update(etype for etype, _, _ in found)
        return cls(sentences=n, tokens=tokens, types=len(counts),
                   types_twice=sum(1 for c in counts.values() if c >= 2), entities=entities,
                   entity_types=len(types), longest=longest, labels=len(labels) if per_token else 0)

    def describe(self) -> str:
        what = (f"{_n(self.labels, 'label')} (per token)" if self.labels else
                f"{self.entities:,} entities of {_n(self.entity_types, 'type')}")
        return (f"{_n(self.sentences, 'sentence')}, {_n(self.tokens, 'token')}, {_n(self.types, 'word type')} "
                f"({self.types_twice:,} seen twice or more), {what}")


@dataclass
class ParallelStats:
    """Statistics of sentence pairs: each side's :class:`TextStats`, and the joint text's."""

    pairs: int = 0
    source: TextStats = dataclasses.field(default_factory=TextStats)
    target: TextStats = dataclasses.field(default_factory=TextStats)
    joint: TextStats = dataclasses.field(default_factory=TextStats)

    @classmethod
    def from_pairs(cls, sources: list[str], targets: list[str]) -> "ParallelStats":
        """Count line-aligned ``sources`` and ``targets``."""
        return cls(pairs=len(sources), source=TextStats.from_lines(sources),
                   target=TextStats.from_lines(targets), joint=TextStats.from_lines(sources + targets))

    def describe(self) -> str:
        return (f"{self.pairs:,} pairs; source {self.source.words:,} words, {self.source.types:,} types; "
                f"target {self.target.words:,} words, {self.target.types:,} types")


# ---------------------------------------------------------------- shared rules
def _given(config, key: str, fallback: Any) -> Any:
    """``config.key`` unless it is still auto."""
    value = getattr(config, key)
    return fallback if is_auto(value) else value


def _tier(size: float, table: list[tuple[float, Any]]) -> tuple[Any, float]:
    """The value of the first ``(limit, value)`` row with ``size < limit``, and that limit."""
    for limit, value in table:
        if size < limit:
            return value, limit
    return table[-1][1], math.inf


def _under(limit: float, unit: str) -> str:
    return f"{unit} under {limit:,.0f}" if math.isfinite(limit) else f"{unit} beyond the largest tier"


# Subword vocabularies: half the word types seen twice. On 400 and 2,000 lines of
# PTB it gave the lowest perplexity per word of the sizes tried (0.3x, 0.5-0.6x,
# 1x, 1.7x; AUTO_DEFAULTS.md). It also stays under the most pieces SentencePiece
# can build from the text (0.5-1.1 x the word types, 0.87-3.8 x the types seen
# twice on the files measured), so the fallback below rarely has to act.
SUBWORD_SHARE = 0.5
SUBWORD_CAP = 8000
WORD_CAP = 30000
SPECIALS = 4


def vocab_choice(stats: TextStats, kind: str) -> Choice:
    """Vocabulary size for a tokenizer of type ``kind`` trained on text with ``stats``."""
    if kind == "word" and stats.closed_vocabulary:
        size = min(WORD_CAP, stats.types + SPECIALS - 1)  # <unk> is one of the specials
        return Choice(size, f"every one of the {stats.types - 1:,} words, plus {SPECIALS} specials (the text "
                            "already writes its rare words as <unk>)"
                      + (f"; at most {WORD_CAP:,}" if size == WORD_CAP else ""))
    if kind == "word":
        size = min(WORD_CAP, stats.types_twice + SPECIALS)
        return Choice(size, f"the {stats.types_twice:,} words seen twice or more, plus {SPECIALS} specials "
                            "(rarer words read as <unk>, so <unk> is learned)"
                      + (f"; at most {WORD_CAP:,}" if size == WORD_CAP else ""))
    floor = stats.chars + SPECIALS + 16  # every character, plus a few pieces
    if kind == "char":
        return Choice(stats.chars + SPECIALS, f"the {stats.chars} characters plus {SPECIALS} specials")
    size = max(floor, min(SUBWORD_CAP, int(SUBWORD_SHARE * stats.types_twice)))
    if size >= 64:
        size -= size % 8  # a multiple of 8 suits matrix kernels; rounding down stays in the safe range
    if size == SUBWORD_CAP:
        reason = f"at most {SUBWORD_CAP:,} (half of {stats.types_twice:,} word types seen twice or more)"
    elif size == floor:
        reason = f"the {stats.chars} characters plus a few pieces (few words repeat)"
    else:
        reason = f"half the {stats.types_twice:,} word types seen twice or more"
    return Choice(size, reason)


def _epochs(steps_per_epoch: float, target_steps: int, low: int, high: int) -> Choice:
    epochs = int(min(high, max(low, math.ceil(target_steps / max(steps_per_epoch, 1)))))
    per = f"{steps_per_epoch:,.0f}" if steps_per_epoch >= 10 else f"{steps_per_epoch:.1f}"
    return Choice(epochs, f"about {target_steps:,} steps at {per} per epoch "
                          f"({low}-{high} epochs; early stopping ends it sooner)")


# ---------------------------------------------------------------- language model
# (training words up to, hidden size, dropout); each row's evidence is in
# AUTO_DEFAULTS.md, "Language model" (validation perplexity per word).
LM_TIERS = [
    (20_000, (200, 0.5)),      # 400 PTB lines: width 200 beat 128; dropout 0.5
    (100_000, (200, 0.3)),     # 2,000 lines: dropout 0.3 beat 0.5 and 0 (0 overfits from epoch 5)
    (500_000, (256, 0.4)),     # 10,000 lines
    (3_000_000, (400, 0.4)),   # all of PTB: the 90-minute CPU recipe (ptb-cpu90.toml)
    (math.inf, (650, 0.5)),    # beyond the data measured: Zaremba et al.'s medium model
]
LM_BATCH = 20
# Steps per epoch below which the batch shrinks: on 400 lines, 5 streams (110 steps an
# epoch) beat 20 (27 steps) by 29%; on 2,000 lines 10 and 20 streams tied.
LM_MIN_STEPS = 100
# SGD's step schedule halves the rate each epoch from lr_decay_start: 11 epochs later
# it is below 0.001 and nothing more is learned.
LM_STEP_EPOCHS_AFTER_DECAY = 11
LM_TARGET_STEPS = 6000  # Adam (plateau schedule): epochs for about this many steps
LM_ADAM_EPOCHS = (8, 40)
LM_ADAM_LR = 0.002
LM_SGD_LR = 1.0
LM_PATIENCE = 3


def lm_values(stats: TextStats, config) -> dict[str, Choice]:
    """Auto values of an :class:`~lstmtext.lm.config.LMConfig` for training text with ``stats``."""
    out: dict[str, Choice] = {}
    out["tokenizer"] = (Choice("word", f"{stats.unk:,} words are written <unk>: the text has a closed vocabulary "
                                       "(as PTB), so its words are the units")
                        if stats.closed_vocabulary else
                        Choice("unigram", "SentencePiece unigram pieces: any word can be spelled"))
    out["vocab_size"] = vocab_choice(stats, _given(config, "tokenizer", out["tokenizer"].value))
    (hidden, dropout), limit = _tier(stats.words, LM_TIERS)
    if config.tie_weights and not is_auto(config.embedding_dim):
        out["hidden_size"] = Choice(config.embedding_dim, "as embedding_dim (tie_weights)")
    else:
        out["hidden_size"] = Choice(hidden, _under(limit, "training words"))
    hidden = _given(config, "hidden_size", out["hidden_size"].value)
    out["embedding_dim"] = Choice(hidden, "as hidden_size")
    out["num_layers"] = Choice(2, "two layers, as Zaremba et al. (not varied)")
    out["dropout"] = Choice(dropout, _under(limit, "training words"))
    dropout = _given(config, "dropout", dropout)
    out["dropout_embedding"] = Choice(dropout, "as dropout")
    out["dropout_output"] = Choice(dropout, "as dropout")
    # Tokens: the stream's once tokenized, else words plus one end-of-line a line (a lower bound).
    tokens = stats.tokens if stats.tokens is not None else stats.words + stats.lines
    batch = int(max(1, min(LM_BATCH, tokens // (config.bptt * LM_MIN_STEPS))))
    out["batch_size"] = Choice(batch, f"{LM_BATCH} streams" if batch == LM_BATCH else
                               f"at least {LM_MIN_STEPS} steps per epoch from {tokens:,} tokens")
    batch = _given(config, "batch_size", batch)
    out["optimizer"] = Choice("sgd", "SGD with rate 1 beat Adam at every size measured")
    optimizer = _given(config, "optimizer", "sgd")
    out["lr"] = (Choice(LM_ADAM_LR, "Adam's rate (0.004 was no better)") if optimizer == "adam" else
                 Choice(LM_SGD_LR, "SGD's rate with the loss summed over time (Zaremba et al.)"))
    out["lr_schedule"] = (Choice("plateau", "halve when validation perplexity stalls") if optimizer == "adam"
                          else Choice("step", "halve each epoch from lr_decay_start (beat plateau for SGD)"))
    schedule = _given(config, "lr_schedule", out["lr_schedule"].value)
    if schedule == "step":
        epochs = config.lr_decay_start + LM_STEP_EPOCHS_AFTER_DECAY
        out["epochs"] = Choice(epochs, f"the step schedule's rate is below 0.001 after {epochs} epochs")
    else:
        out["epochs"] = _epochs(tokens / (batch * config.bptt), LM_TARGET_STEPS, *LM_ADAM_EPOCHS)
    out["patience"] = Choice(LM_PATIENCE, "stop after 3 epochs without improvement")
    return out


# ---------------------------------------------------------------- tagger
# AUTO_DEFAULTS.md, "Tagger" (validation entity F1 on CoNLL-2003 subsets).
# (training sentences up to, hidden size): 100 and 200 units tied within 1 F1 on 500 and 2,000
# sentences, 100 in 40% less time; on more data Lample et al.'s 200 (the CoNLL-2003 recipe).
NER_HIDDEN = [(5_000, 100), (math.inf, 200)]
NER_DROPOUT = 0.5
# (training sentences up to, batch): 16 beat 32 by 3.7 F1 on 500 sentences (31 steps an
# epoch, not 16); on 2,000 they tied and 32 swung less between epochs.
NER_BATCH = [(1_000, 16), (math.inf, 32)]
# (training sentences up to, epochs): the best epoch came at 11-18 on 500 sentences, 9-13
# on 2,000 and 10 or later on all 14,041 (the shipped model); patience ends runs sooner.
NER_EPOCHS = [(5_000, 40), (math.inf, 30)]
NER_LR = 0.002  # Nadam 0.001 lost 3 F1 on 500 sentences
NER_PATIENCE = 8


def ner_values(stats: TaggedStats, config, embeddings_dim: int | None = None) -> dict[str, Choice]:
    """Auto values of a :class:`~lstmtext.ner.config.NERConfig` for tagged data with ``stats``.

    ``embeddings_dim``: the vector size of the ``embeddings`` file, if any.
    """
    out: dict[str, Choice] = {}
    hidden, hlimit = _tier(stats.sentences, NER_HIDDEN)
    out["hidden_size"] = Choice(hidden, _under(hlimit, "training sentences"))
    out["word_dim"] = (Choice(embeddings_dim, "the embeddings file's vector size") if embeddings_dim else
                       Choice(100, "the usual size of word vectors for tagging (Lample et al.)"))
    out["num_layers"] = Choice(1, "one BiLSTM layer (Lample et al.; not varied)")
    out["dropout"] = Choice(NER_DROPOUT, "Lample et al.'s dropout, best at every size measured")
    batch, blimit = _tier(stats.sentences, NER_BATCH)
    out["batch_size"] = Choice(batch, _under(blimit, "training sentences") + " (more steps an epoch)"
                               if batch == NER_BATCH[0][1] else f"{stats.sentences:,} training sentences")
    epochs, elimit = _tier(stats.sentences, NER_EPOCHS)
    out["epochs"] = Choice(epochs, _under(elimit, "training sentences") + "; early stopping ends it sooner")
    out["optimizer"] = Choice("nadam", "Nadam (Reimers & Gurevych 2017)")
    optimizer = _given(config, "optimizer", "nadam")
    out["lr"] = (Choice(NER_LR, "Nadam's rate; 0.001 learned slower") if optimizer != "sgd" else
                 Choice(0.01, "SGD's rate for BiLSTM-CRF taggers (Lample et al.)"))
    out["patience"] = Choice(NER_PATIENCE, "validation F1 swings between epochs: wait 8 for a better one")
    return out


# ---------------------------------------------------------------- translator
# (training pairs up to, embedding, encoder units, decoder units, dropout)
MT_TIERS = [
    (10_000, (128, 128, 256, 0.4)),
    (100_000, (256, 256, 512, 0.3)),
    (math.inf, (512, 512, 1024, 0.2)),
]
MT_BATCH = [(5_000, 32), (math.inf, 64)]
MT_TARGET_STEPS = 8000
MT_EPOCHS = (10, 40)
MT_PATIENCE = 4


def translate_values(stats: ParallelStats, config) -> dict[str, Choice]:
    """Auto values of a :class:`~lstmtext.translate.config.TranslateConfig` for pairs with ``stats``."""
    out: dict[str, Choice] = {}
    text = stats.joint if config.joint_vocab else stats.source
    # Each side of a joint model shares one vocabulary: size it from both.
    out["vocab_size"] = vocab_choice(text, config.tokenizer)
    (emb, enc, dec, dropout), limit = _tier(stats.pairs, MT_TIERS)
    why = _under(limit, "training pairs")
    out["embedding_dim"] = Choice(emb, why)
    out["encoder_units"] = Choice(enc, why)
    out["decoder_units"] = Choice(dec, why)
    out["encoder_layers"] = Choice(1 if stats.pairs < 100_000 else 2, why)
    out["decoder_layers"] = Choice(1, "one decoder layer at every size measured")
    out["dropout"] = Choice(dropout, why)
    batch, blimit = _tier(stats.pairs, MT_BATCH)
    out["batch_size"] = Choice(batch, _under(blimit, "training pairs"))
    batch = _given(config, "batch_size", batch)
    pairs = min(stats.pairs, config.epoch_pairs) if config.epoch_pairs else stats.pairs
    out["epochs"] = _epochs(pairs / batch, MT_TARGET_STEPS, *MT_EPOCHS)
    out["optimizer"] = Choice("adam", "Adam at every size measured")
    optimizer = _given(config, "optimizer", "adam")
    out["lr"] = (Choice(0.001, "Adam's rate at every size measured") if optimizer == "adam" else
                 Choice(1.0, "SGD's rate for LSTM translators (Luong et al. 2015)"))
    out["patience"] = Choice(MT_PATIENCE, "stop after 4 epochs without improvement")
    return out


# ---------------------------------------------------------------- resolving
def resolve(config, values: dict[str, Choice], keys: Iterable[str] | None = None):
    """Replace each ``"auto"`` key of ``config`` by its value in ``values``.

    Args:
        config: A task config.
        values: A rule's result (:func:`lm_values`, ...).
        keys: Resolve only these keys (those needed early, such as the
            vocabulary size before the tokenizer is trained); default: all.

    Returns:
        ``(config, {key: Choice})`` with the keys that were auto and are now set.
    """
    only = set(keys) if keys is not None else None
    chosen = {key: values[key] for key in auto_keys(config) if only is None or key in only}
    config = dataclasses.replace(config, **{key: c.value for key, c in chosen.items()})
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return config, chosen


# A mid-sized corpus (about Penn Treebank's size) for configs built without data.
_REFERENCE = {
    "lm": lambda: TextStats(lines=42_000, words=900_000, types=10_000, types_twice=10_000, chars=50),
    "ner": lambda: TaggedStats(sentences=14_000, tokens=200_000, types=20_000, types_twice=9_000,
                               entities=23_000, entity_types=4, longest=120),
    "translate": lambda: ParallelStats(
        pairs=29_000, source=TextStats(29_000, 360_000, 10_000, 6_000, 80),
        target=TextStats(29_000, 340_000, 18_000, 9_000, 90), joint=TextStats(58_000, 700_000, 28_000, 15_000, 100)),
}
_RULES = {"lm": lm_values, "ner": ner_values, "translate": translate_values}


def _task_of(config) -> str:
    name = type(config).__name__
    return {"LMConfig": "lm", "NERConfig": "ner", "TranslateConfig": "translate"}[name]


def fill(config):
    """``config`` with every auto key set as for a mid-sized corpus (about Penn Treebank's size).

    For configs built in code without training data (tests, benchmarks of
    one architecture); training resolves auto keys from its own data. A
    config without auto keys comes back unchanged (the same object).
    """
    if not auto_keys(config):
        return config
    task = _task_of(config)
    return resolve(config, _RULES[task](_REFERENCE[task](), config))[0]


# ---------------------------------------------------------------- time estimate
# Training FLOPs per second of one core of this project's CPU (two cores), by task; a
# rough guide only (AUTO_DEFAULTS.md). The tagger's and translator's are fitted to no-flag
# runs on the whole CoNLL-2003 and Multi30k training files on a quiet machine (2026-12-04);
# the language model's is about 0.6x its quiet rate since its LSTMs run as one sequence
# kernel (65-79 GFLOP/s a core on 2026-12-04: the shipped recipe on two threads, and a
# 1 x 384 model on one core).
FLOPS_PER_CORE = {"lm": 40e9, "ner": 18e9, "translate": 20e9}
# Training costs about three forward passes (forward, and a backward of twice that).
TRAIN_FACTOR = 3
# Seconds each step costs beyond its FLOPs (graph dispatch, padding, the tagger's CRF,
# the translator's per-shape steps), fitted to the runs in AUTO_DEFAULTS.md.
STEP_OVERHEAD = {"lm": 0.005, "ner": 0.015, "translate": 0.1}


def _lstm_macs(inputs: int, units: int) -> int:
    return 4 * units * (inputs + units)


def epoch_seconds(task: str, config, tokens: int, vocab: int, steps: int = 0, extra: dict | None = None) -> float:
    """Estimated seconds of one training epoch on this machine's CPU cores.

    Args:
        task: ``lm``, ``ner`` or ``translate``.
        config: The resolved config.
        tokens: Training tokens per epoch (LM: the stream's tokens; tagger:
            words; translator: target pieces).
        vocab: Output vocabulary (LM, translator) or tag count (tagger).
        steps: Training steps per epoch.
        extra: ``source_tokens`` and ``source_length`` for the translator.
    """
    c = config
    if task == "lm":
        macs = sum(_lstm_macs(c.embedding_dim if i == 0 else c.hidden_size, c.hidden_size)
                   for i in range(c.num_layers)) + c.hidden_size * vocab
    elif task == "ner":
        char = {"cnn": c.char_dim * c.char_filters * c.char_kernel * 12, "none": 0,
                "lstm": 2 * 12 * _lstm_macs(c.char_dim, c.char_hidden)}[c.char_encoder]
        features = c.word_dim + c.casing_dim + {"cnn": c.char_filters, "lstm": 2 * c.char_hidden,
                                                 "none": 0}[c.char_encoder]
        macs = char + 2 * _lstm_macs(features, c.hidden_size) + 2 * c.hidden_size * vocab
        if c.num_layers == 2:
            macs += 2 * _lstm_macs(2 * c.hidden_size, c.hidden_size)
    else:
        extra = extra or {}
        src_len = max(1.0, extra.get("source_length", 15.0))
        src_ratio = extra.get("source_tokens", tokens) / max(tokens, 1)
        encoder = 2 * _lstm_macs(c.embedding_dim, c.encoder_units) * src_ratio
        if c.encoder_layers == 2:
            encoder += 2 * _lstm_macs(2 * c.encoder_units, c.encoder_units) * src_ratio
        d = c.decoder_units
        decoder = _lstm_macs(c.embedding_dim + d, d) * c.decoder_layers
        attention = 2 * src_len * 2 * c.encoder_units + d * (d + 2 * c.encoder_units)
        macs = encoder + decoder + attention + d * vocab
    flops = 2 * TRAIN_FACTOR * macs * tokens
    return flops / (FLOPS_PER_CORE[task] * min(os.cpu_count() or 1, 16)) + steps * STEP_OVERHEAD[task]


# ---------------------------------------------------------------- a budget sizes the model
# Epochs a --budget must hold before auto widths are made smaller: the best validation
# epoch came at 5-15 (language model), 8-18 (tagger) and 7 or later (translator) in the
# runs of AUTO_DEFAULTS.md; fewer epochs of a wider model learned less.
BUDGET_EPOCHS = {"lm": 6, "ner": 8, "translate": 8}
# The widths a budget may shrink (auto only), together, by this factor a step, down to MIN_WIDTH.
SIZE_KEYS = {"lm": ("hidden_size", "embedding_dim"), "ner": ("hidden_size",),
             "translate": ("embedding_dim", "encoder_units", "decoder_units")}
SHRINK = 0.75
MIN_WIDTH = 32


def fit_budget(task: str, config, chosen: dict[str, Choice], per_epoch, budget: float | None):
    """Narrow the auto widths of ``config`` until :data:`BUDGET_EPOCHS` epochs fit in ``budget``.

    Args:
        task: ``lm``, ``ner`` or ``translate``.
        config: A resolved config (no auto keys left).
        chosen: The auto choices (only keys in it are changed; given values always stay).
        per_epoch: ``config -> estimated seconds per epoch`` (:func:`epoch_seconds`).
        budget: Seconds of ``--budget`` left, or ``None``.

    Returns:
        ``(config, chosen)``, the widths and their reasons updated where shrunk.
        The estimate is this CPU's FLOP rate: callers skip this on a GPU.
    """
    keys = [k for k in SIZE_KEYS[task] if k in chosen]
    if budget is None or not keys:
        return config, chosen
    if task == "lm" and config.tie_weights and len(keys) == 1:
        return config, chosen  # tied: one width given, the other must follow it
    need = max(1, min(BUDGET_EPOCHS[task], config.epochs))
    before = {k: getattr(config, k) for k in keys}
    while per_epoch(config) * need > budget:
        smaller = {k: max(MIN_WIDTH, int(getattr(config, k) * SHRINK) // 8 * 8) for k in keys}
        if all(smaller[k] == getattr(config, k) for k in keys):
            break
        config = dataclasses.replace(config, **smaller)
    if any(getattr(config, k) != before[k] for k in keys):
        chosen = dict(chosen)
        why = (f"narrowed from {{}} so that {need} epochs (about {_duration(per_epoch(config))} each) fit in "
               f"--budget {_duration(budget)}")
        for k in keys:
            chosen[k] = Choice(getattr(config, k), why.format(before[k]))
    return config, chosen


def fit_options_budget(task: str, config, chosen: dict[str, Choice], per_epoch, options):
    """:func:`fit_budget` with the time left of ``options.budget``; nothing on a GPU or without a budget."""
    from lstmtext.training.budget import seconds_left

    left = seconds_left(options)
    if left is None or not any(k in chosen for k in SIZE_KEYS[task]):
        return config, chosen
    from lstmtext.backend import has_accelerator

    if has_accelerator():
        return config, chosen
    return fit_budget(task, config, chosen, per_epoch, left)


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under 1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def summary(stats, chosen: dict[str, Choice], per_epoch: float | None = None, epochs: int | None = None,
            notes: Iterable[str] = ()) -> str:
    """The block printed before training: statistics, auto values with reasons, time estimate."""
    lines = [f"training data: {stats.describe()}"]
    lines += [f"  {note}" for note in notes]
    if chosen:
        width = max(len(k) for k in chosen)
        lines.append("auto values (--set KEY=VALUE overrides):")
        lines += [f"  {key:<{width}} = {c.value!s:<7} {c.reason}" for key, c in chosen.items()]
    else:
        lines.append("auto values: none (every key given)")
    if per_epoch is not None:
        total = (f", up to {_duration(per_epoch * epochs)} for {epochs} epoch{'s' * (epochs != 1)}"
                 if epochs else "")
        lines.append(f"estimated time: about {_duration(per_epoch)} per epoch{total} "
                     f"({os.cpu_count()} CPU cores; a rough FLOP estimate)")
    return "\n".join(lines)
