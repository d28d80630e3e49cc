"""Fine-tuning a tagger from a bundle (``train ner --init MODEL``).

The new tagger keeps everything the bundle learned and grows where the new
data needs it:

* **Tags.** The bundle's tags keep their ids, emission weights and CRF
  transitions; entity types that are new in the data add their tags after
  them, with fresh emission columns and fresh CRF rows and columns. The CRF's
  forbidden-transition mask is built from the whole new tag set, so moves
  between old and new tags obey the scheme (BIOES/IOB2) like any others.
  A per-token tagger (part of speech, residue states) grows the same way by
  the labels the data adds.
* **Vocabularies.** The bundle's words and characters, and the values of its
  feature columns, keep their ids and vectors; training words (``min_count``
  applies), characters and feature values the bundle lacks are added after
  them with freshly initialised vectors, so the tagger can learn the new
  domain's words rather than read them all as ``<unk>``.
* Everything else (character encoder, BiLSTM layers, casing embedding)
  starts from the bundle's weights.

The bundle fixes its input (words or characters), its feature columns and
its label kind: data of another kind (per-token labels for a span tagger,
FASTA for a word tagger) is refused with one line naming the bundle, as is
data the bundle cannot represent (more than half the characters unknown to
it, or no word it knows).
"""

from __future__ import annotations

import re

import numpy as np

from lstmtext.errors import BundleError, UsageError
from lstmtext.ner import labels, schemes
from lstmtext.ner.features import Vocab
from lstmtext.training import init_from


def init_config(config, bundle, options):
    """``config`` with the bundle's architecture and vocabulary settings (:mod:`lstmtext.training.init_from`)."""
    if config.embeddings:
        raise UsageError("--embeddings and --init exclude each other (the word vectors come from the "
                         "--init bundle)")
    return init_from.init_config(config, bundle, options, "ner")


def merge_vocabulary(bundle, new: Vocab, meta: dict, train_data, reporter) -> tuple[Vocab, dict, Vocab]:
    """The bundle's vocabulary extended by what ``new`` (built from the training data) adds.

    Args:
        bundle: The ``--init`` bundle.
        new: The vocabulary a tagger trained from scratch on the data would have.
        meta: That tagger's bundle metadata (updated here: tags, entity types,
            sizes, and ``train_data.init``).
        train_data: ``(tokens, internal tags)`` of the training sentences.
        reporter: Receives one line on what was kept and added.

    Returns:
        ``(vocabulary, metadata, the bundle's vocabulary)``.

    Raises:
        BundleError: the bundle cannot represent the data.
    """
    from lstmtext.ner.features import load_vocab

    old = load_vocab(bundle)
    tokens = [t for toks, _ in train_data for t in toks]
    chars = [c for t in tokens for c in t[: old.max_word_length]]
    init_from.check_coverage(bundle, sum(c not in old.char_index for c in chars), len(chars), "characters")
    if tokens and not any(old.normalize(t) in old.word_index for t in tokens):
        raise BundleError(f"--init {bundle.path}: none of the training words is in its vocabulary; train "
                          "without --init, or start from a bundle trained on similar text")
    spans = labels.kind_of(bundle.config) == labels.SPANS
    added_tags = [t for t in new.tags if t not in old.tag_index]
    if spans:  # entity types, as the tags are B-/I-/E-/S- of them
        old_types = sorted({schemes.split_tag(t)[1] for t in old.tags if t != "O"})
        new_types = sorted({schemes.split_tag(t)[1] for t in added_tags})
    else:  # the labels themselves
        old_types, new_types = list(old.tags), list(added_tags)
    words = _extended(old.words, new.words)
    char_list = _extended(old.chars, new.chars)
    features = [_extended(o, n) for o, n in zip(old.features, new.features)]
    vocab = Vocab(words, char_list, old.tags + added_tags, old.lowercase, old.normalize_digits,
                  old.max_word_length, features)
    meta = dict(meta)
    meta["tags"] = vocab.tags
    if spans:
        meta["entity_types"] = sorted(set(old_types) | set(meta.get("entity_types", [])))
    meta["vocab"] = {**meta.get("vocab", {}), "words": len(vocab.words), "chars": len(vocab.chars)}
    if bundle.meta.get("embeddings"):
        meta["embeddings"] = bundle.meta["embeddings"]  # where the bundle's word vectors came from
    new_values = sum(len(f) for f in features) - sum(len(f) for f in old.features)
    meta["train_data"] = {**meta.get("train_data", {}), "init": init_from.summary(
        bundle, kept_types=old_types, new_types=new_types, new_words=len(words) - len(old.words),
        new_chars=len(char_list) - len(old.chars), new_feature_values=new_values)}
    what = "entity types" if spans else "labels"
    reporter.message(
        f"--init {bundle.path}: kept {len(old_types)} {what} ({_listed(old_types)}), "
        f"added {len(new_types)} ({_listed(new_types)}); {len(words) - len(old.words)} new words, "
        f"{len(char_list) - len(old.chars)} new characters"
        + (f" and {new_values} new feature values" if features else "") + " get fresh vectors")
    return vocab, meta, old


def _extended(old: list[str], new: list[str]) -> list[str]:
    """``old`` in its order, then the entries of ``new`` it lacks."""
    seen = set(old)
    return old + [x for x in new if x not in seen]


def _listed(names: list[str], most: int = 12) -> str:
    return (", ".join(names[:most]) + (" ..." if len(names) > most else "")) or "none"


def check_kind(bundle, input_kind: str, label_kind: str) -> None:
    """Refuse data of another input or label kind than the bundle's (one line naming it).

    Raises:
        BundleError: the bundle reads words and the data is characters (or the
            reverse), or it tags spans and the data has per-token labels (or the reverse).
    """
    have = bundle.config.get("input", "words")
    if have != input_kind:
        raise BundleError(f"--init {bundle.path}: the bundle reads {_INPUTS[have]}, this data is "
                          f"{_INPUTS[input_kind]}; train without --init")
    have = labels.kind_of(bundle.config)
    if have != label_kind:
        raise BundleError(f"--init {bundle.path}: the bundle tags {_KINDS[have]}, this data has "
                          f"{_KINDS[label_kind]}; train without --init")


_INPUTS = {"words": "words", "chars": "characters (FASTA sequences)"}
_KINDS = {labels.SPANS: "spans (entities, chunks)", labels.TOKENS: "per-token labels"}


# Variables indexed by an inventory, by the last part of their path: which
# axes follow the words, the characters or the tags.
_WORD_AXES = {"word_embedding/embeddings": (0,)}
_CHAR_AXES = {"char_embedding/embeddings": (0,)}
_TAG_AXES = {"emissions/kernel": (1,), "emissions/bias": (0,), "crf/transitions": (0, 1),
             "crf/start_transitions": (0,), "crf/end_transitions": (0,)}
_FEATURE = re.compile(r"(?:^|/)feature_embedding_(\d+)/embeddings$")


def _axes(path: str) -> dict[int, str]:
    """``{axis: "words" | "chars" | "tags" | "feature<f>"}`` for a variable path."""
    for table, kind in ((_WORD_AXES, "words"), (_CHAR_AXES, "chars"), (_TAG_AXES, "tags")):
        for suffix, axes in table.items():
            if path == suffix or path.endswith("/" + suffix):
                return {a: kind for a in axes}
    m = _FEATURE.search(path)
    return {0: f"feature{m.group(1)}"} if m else {}


def load_weights(model, bundle, old: Vocab, vocab: Vocab) -> None:
    """Assign the bundle's weights to ``model`` built for the extended ``vocab``.

    Rows and columns of old words, characters and tags get the bundle's
    values (found by name, so the order of the new inventories is free);
    those of new entries keep the model's fresh initial values.

    Raises:
        BundleError: a variable is missing or has an unexpected shape.
    """
    from lstmtext.weights import load_arrays

    arrays = load_arrays(bundle.file("weights.h5"))
    index = {"words": [vocab.word_index[w] for w in old.words],
             "chars": [vocab.char_index[c] for c in old.chars],
             "tags": [vocab.tag_index[t] for t in old.tags],
             **{f"feature{f}": [vocab.feature_index[f][v] for v in values] for f, values in enumerate(old.features)}}
    sizes = {k: len(v) for k, v in index.items()}
    for v in model.weights:
        if v.path not in arrays:
            raise BundleError(f"--init {bundle.path}: weights lack variable '{v.path}'")
        value = np.asarray(arrays[v.path], np.float32)
        axes = _axes(v.path)
        expected = tuple(sizes[axes[a]] if a in axes else dim for a, dim in enumerate(v.shape))
        if tuple(value.shape) != expected:
            raise BundleError(f"--init {bundle.path}: variable '{v.path}' has shape {tuple(value.shape)}, "
                              f"expected {expected}")
        if axes:
            merged = np.array(v.numpy(), np.float32)  # fresh values for the new entries
            merged[np.ix_(*[index[axes[a]] if a in axes else range(dim) for a, dim in enumerate(v.shape)])] = value
            value = merged
        v.assign(value.astype(v.dtype))
