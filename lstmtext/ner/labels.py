"""The two kinds of labels a tagger learns: entity spans or one label per token.

* **spans**: tags in a BIO-like scheme (``O``, ``B-X``, ``I-X``, ``E-X``,
  ``S-X``): named entities, chunks. The model works in BIOES, answers in the
  data's scheme and is scored per entity (:mod:`lstmtext.ner.metrics`).
* **tokens**: any label set, one label per token, each scored on its own:
  part-of-speech tags, protein secondary structure (H/E/C). No scheme, no
  conversion, no CRF constraints (the CRF still learns the transitions).

``auto`` reads the training data: spans when every tag parses as ``O`` or a
prefixed type, tokens otherwise. Data that is mostly spans with a few tags
that do not parse (``BPER``) is refused rather than silently learned as
per-token labels.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from lstmtext.errors import DataError
from lstmtext.ner.schemes import allowed, split_tag

SPANS, TOKENS = "spans", "tokens"


def _parses(tag: str) -> bool:
    try:
        split_tag(tag)
    except ValueError:
        return False
    return True


def detect(sentences: Iterable, path: str = "") -> str:
    """``spans`` or ``tokens`` for sentences with ``.tags`` (``None`` tags are skipped).

    Raises:
        DataError: when at least half of the distinct tags are prefixed types
            (``B-NP``) but some do not parse: naming the first such tag and
            its line, and ``label_kind`` to force a kind.
    """
    seen: dict[str, object] = {}
    for s in sentences:
        for i, tag in enumerate(s.tags or ()):
            if tag is not None and tag not in seen:
                seen[tag] = (s, i)
    bad = [t for t in seen if not _parses(t)]
    if not bad:
        return SPANS
    prefixed = [t for t in seen if t != "O" and _parses(t)]
    if len(prefixed) >= len(seen) / 2:
        s, i = seen[bad[0]]
        line = (s.line or 0) + (i if s.lines is not None else 0) if s.line else None
        raise DataError(f"tag '{bad[0]}' is not O or B-/I-/E-/S- plus a type, though most tags are: fix it, "
                        "or set label_kind=tokens (labels as they are) or label_kind=spans",
                        s.source or path, line)
    return TOKENS


def kind_of(config: dict) -> str:
    """The label kind of a bundle's config; bundles from before label kinds hold spans."""
    kind = config.get("label_kind", "auto")
    return kind if kind in (SPANS, TOKENS) else SPANS


def decoding_of(config: dict) -> str:
    """How a CRF tagger picks its tags: ``viterbi`` or ``marginal`` (:func:`lstmtext.layers.viterbi.crf_decode`).

    Spans always take Viterbi (well-formed spans); per-token labels take the
    config's ``decode``, marginal when it is auto (bundles from before it too).
    """
    if kind_of(config) != TOKENS:
        return "viterbi"
    return "viterbi" if config.get("decode", "auto") == "viterbi" else "marginal"


def label_set(sequences: Iterable[Sequence[str | None]]) -> list[str]:
    """The distinct labels of per-token data, sorted (``None``, a masked position, is left out)."""
    return sorted({t for tags in sequences for t in tags if t is not None})


def constraints_for(vocab, config: dict) -> tuple | None:
    """CRF constraints of a tagger's internal tag set (none for per-token labels: any label may follow any)."""
    if config.get("head", "crf") != "crf" or kind_of(config) == TOKENS:
        return None
    return allowed(vocab.tags, config.get("tag_scheme", "bioes"))
