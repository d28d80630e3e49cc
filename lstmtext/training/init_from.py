"""Starting a training from a trained bundle (``--init MODEL``).

The new model takes the bundle's tokenizer and the config keys that shape
its weights (:data:`SHAPE_KEYS`: sizes, layers, vocabulary, tag scheme),
then its weights; every other key (learning rate, epochs, dropout, batch
size, patience ...) comes from the defaults, ``--config`` and ``--set`` as
in any training. Giving a shape key a different value is an error naming
the key. Each task applies this in its ``train`` function; the tagger also
extends its tag set and vocabularies (:mod:`lstmtext.ner.init`). The new
bundle records where it started in its data summary (:func:`summary`).

Data that the bundle's tokenizer cannot represent (more than
:data:`UNKNOWN_LIMIT` of the tokens unknown to it) is refused with one line
naming the bundle: the bundle's weights would carry nothing over.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lstmtext.errors import BundleError, ConfigError, UsageError

# Config keys whose value fixes the shape of some weight, or the tokenizer,
# per task: with --init they are the bundle's.
SHAPE_KEYS = {
    "lm": ("tokenizer", "vocab_size", "embedding_dim", "hidden_size", "num_layers", "tie_weights"),
    "ner": ("word_dim", "casing_dim", "char_encoder", "char_dim", "char_filters", "char_kernel",
            "char_hidden", "hidden_size", "num_layers", "head", "tag_scheme", "lowercase",
            "normalize_digits", "max_word_length", "input", "feature_columns", "feature_dim"),
    "translate": ("joint_vocab", "vocab_size", "tokenizer", "embedding_dim", "encoder_units",
                  "encoder_layers", "decoder_units", "decoder_layers", "attention", "attention_units",
                  "tie_embeddings"),
}
# Refuse data whose tokens (or, for the tagger, characters) are mostly unknown to the bundle.
UNKNOWN_LIMIT = 0.5


def read_init(options, task: str):
    """The ``--init`` bundle of ``options`` for ``task``, or ``None`` without one.

    Raises:
        UsageError: ``--init`` together with ``--resume``.
        BundleError: not a bundle, or a bundle of another task (the line names it).
    """
    from lstmtext import bundle as bundle_io

    path = getattr(options, "init", None)
    if not path:
        return None
    if options.resume:
        raise UsageError("--init and --resume exclude each other (--resume continues OUTPUT/model-last)")
    try:
        return bundle_io.read(path, task)
    except BundleError as exc:
        raise BundleError(f"--init {exc}") from None


def explicit_keys(options) -> set[str]:
    """Config keys the user set: ``--config``, ``--set`` or a command-line option (``--feature-column``)."""
    from lstmtext import config as config_io

    keys = set(config_io.parse_sets(options.sets))
    keys |= {k for k, v in (options.extra or {}).items() if v is not None}
    if options.config_file is not None:
        keys |= set(config_io.load_toml(options.config_file))
    return keys


def init_config(config, bundle, options, task: str):
    """``config`` with the shape keys of ``bundle``; a conflicting explicit value is an error.

    Raises:
        ConfigError: a shape key was set (``--config``/``--set``) to another value than the bundle's.
    """
    from lstmtext.config import is_auto

    given = explicit_keys(options)
    fixed: dict[str, Any] = {}
    for key in SHAPE_KEYS[task]:
        if key not in bundle.config or not hasattr(config, key):
            continue
        value = bundle.config[key]
        mine = getattr(config, key)
        if key in given and not is_auto(mine) and mine != value:
            raise ConfigError(f"is {value!r} in the --init bundle {bundle.path}, which fixes it; "
                              f"leave it out (got {mine!r})", key)
        fixed[key] = value
    return dataclasses.replace(config, **fixed)


def check_coverage(bundle, unknown: int, total: int, what: str = "tokens") -> None:
    """Refuse data of which more than :data:`UNKNOWN_LIMIT` is unknown to the bundle.

    Raises:
        BundleError: naming the bundle and the share of unknown ``what``.
    """
    if total > 0 and unknown / total > UNKNOWN_LIMIT:
        raise BundleError(
            f"--init {bundle.path}: its vocabulary cannot represent this training data "
            f"({100 * unknown / total:.0f}% of the {what} are unknown to it); train without --init, or start "
            "from a bundle trained on similar text")


def summary(bundle, **extra) -> dict:
    """What the data summary of the new bundle records about its start."""
    return {"bundle": str(bundle.path), "task": bundle.task, "created": bundle.meta.get("created"), **extra}


def load_weights(model, bundle) -> None:
    """Assign the bundle's weights to ``model`` (same architecture), checking names and shapes."""
    from lstmtext.weights import assign_model_weights, load_arrays

    assign_model_weights(model, load_arrays(bundle.file("weights.h5")), f"--init {bundle.path}")
