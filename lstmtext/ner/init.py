"""Fine-tuning a tagger from a bundle (``train ner --init MODEL``).

The new tagger keeps everything the bundle learned and grows where the new
data needs it:

* **Tags.** The bundle's tags keep their ids, emission weights and CRF
  transitions; entity types that are new in the data add their tags after
  them, with fresh emission columns and fresh CRF rows and columns. The CRF's
  forbidden-transition mask is built from the whole new tag set, so moves
  between old and new tags obey the scheme (BIOES/IOB2) like any others.
* **Vocabularies.** The bundle's words and characters keep their ids and
  vectors; training words (``min_count`` applies) and characters the bundle
  lacks are added after them with freshly initialised vectors, so the
  tagger can learn the new domain's words rather than read them all as
  ``<unk>``.
* Everything else (character encoder, BiLSTM layers, casing embedding)
  starts from the bundle's weights.

Data the bundle cannot represent (more than half the characters unknown to
it, or no word it knows) is refused with one line naming the bundle.
"""

from __future__ import annotations

import numpy as np

from lstmtext.errors import BundleError, UsageError
from lstmtext.ner import schemes
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
    old_types = sorted({schemes.split_tag(t)[1] for t in old.tags if t != "O"})
    added_tags = [t for t in new.tags if t not in old.tag_index]
    new_types = sorted({schemes.split_tag(t)[1] for t in added_tags})
    words = old.words + [w for w in new.words if w not in old.word_index]
    char_list = old.chars + [c for c in new.chars if c not in old.char_index]
    vocab = Vocab(words, char_list, old.tags + added_tags, old.lowercase, old.normalize_digits,
                  old.max_word_length)
    meta = dict(meta)
    meta["tags"] = vocab.tags
    meta["entity_types"] = sorted(set(old_types) | set(meta.get("entity_types", [])))
    meta["vocab"] = {"words": len(vocab.words), "chars": len(vocab.chars)}
    if bundle.meta.get("embeddings"):
        meta["embeddings"] = bundle.meta["embeddings"]  # where the bundle's word vectors came from
    meta["train_data"] = {**meta.get("train_data", {}), "init": init_from.summary(
        bundle, kept_types=old_types, new_types=new_types, new_words=len(words) - len(old.words),
        new_chars=len(char_list) - len(old.chars))}
    reporter.message(
        f"--init {bundle.path}: kept {len(old_types)} entity types ({', '.join(old_types) or 'none'}), "
        f"added {len(new_types)} ({', '.join(new_types) or 'none'}); {len(words) - len(old.words)} new words "
        f"and {len(char_list) - len(old.chars)} new characters get fresh vectors")
    return vocab, meta, old


# Variables indexed by an inventory, by the last part of their path: which
# axes follow the words, the characters or the tags.
_WORD_AXES = {"word_embedding/embeddings": (0,)}
_CHAR_AXES = {"char_embedding/embeddings": (0,)}
_TAG_AXES = {"emissions/kernel": (1,), "emissions/bias": (0,), "crf/transitions": (0, 1),
             "crf/start_transitions": (0,), "crf/end_transitions": (0,)}


def _axes(path: str) -> dict[int, str]:
    """``{axis: "words" | "chars" | "tags"}`` for a variable path."""
    for table, kind in ((_WORD_AXES, "words"), (_CHAR_AXES, "chars"), (_TAG_AXES, "tags")):
        for suffix, axes in table.items():
            if path == suffix or path.endswith("/" + suffix):
                return {a: kind for a in axes}
    return {}


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
             "tags": [vocab.tag_index[t] for t in old.tags]}
    sizes = {"words": len(old.words), "chars": len(old.chars), "tags": len(old.tags)}
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
