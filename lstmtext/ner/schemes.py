"""Tag schemes: IOB1, IOB2 (BIO) and BIOES — detection, validation and conversion.

* IOB1 (CoNLL-2003 as first released): ``I-X`` inside entities; ``B-X`` only
  starts an entity that directly follows another entity of the same type.
* IOB2 / BIO: every entity starts with ``B-X``; ``I-X`` continues it.
* BIOES (also IOBES): ``S-X`` for one-token entities, ``B-X ... E-X`` for
  longer ones, ``I-X`` inside. ``U-``/``L-`` (BILOU) are read as ``S-``/``E-``.

Everything goes through entity spans: a sequence of tags is read into spans
``(type, start, end)`` (end exclusive) the way conlleval reads it, and spans
are written out in the target scheme. Reading is lenient (an ``I-X`` after
``O`` starts an entity, as in conlleval); :func:`violations` finds the tags a
scheme forbids so that readers can apply their malformed-input policy.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from lstmtext.errors import UsageError

SCHEMES = ("iob1", "iob2", "bioes")
_ALIASES = {"bio": "iob2", "iobes": "bioes", "bilou": "bioes", "iob": "iob2"}
_PREFIX_MAP = {"U": "S", "L": "E"}

Span = tuple[str, int, int]


def normalize_scheme(name: str) -> str:
    """Canonical scheme name; raise :class:`UsageError` for an unknown one."""
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key not in SCHEMES:
        raise UsageError(f"unknown tag scheme '{name}' (known: iob1, iob2/bio, bioes/iobes)")
    return key


def split_tag(tag: str) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", "")``.

    Raises:
        ValueError: for a tag that is neither ``O`` nor ``P-TYPE`` with a known
            prefix (callers turn this into a :class:`DataError` with file and line).
    """
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[1] in "-_" and tag[0] in "BIESUL":
        prefix = _PREFIX_MAP.get(tag[0], tag[0])
        return prefix, tag[2:]
    raise ValueError(f"invalid tag '{tag}' (expected O or B-/I-/E-/S- followed by a type)")


def detect(sentences: Iterable[Sequence[str]]) -> str:
    """Guess the scheme of tagged sentences.

    ``E-``/``S-`` (or ``L-``/``U-``) tags mean BIOES; an entity starting with
    ``I-`` means IOB1; otherwise IOB2 (which also covers data with only ``O``).
    """
    saw_i_start = False
    for tags in sentences:
        prev_prefix, prev_type = "O", ""
        for tag in tags:
            prefix, etype = split_tag(tag)
            if prefix in ("E", "S"):
                return "bioes"
            if prefix == "I" and (prev_prefix == "O" or prev_type != etype):
                saw_i_start = True
            prev_prefix, prev_type = prefix, etype
    return "iob1" if saw_i_start else "iob2"


def _end_of_chunk(prev_prefix: str, prefix: str, prev_type: str, etype: str) -> bool:
    # conlleval's endOfChunk, with BIOES prefixes.
    if prev_prefix in ("E", "S"):
        return True
    if prev_prefix in ("B", "I"):
        if prefix in ("B", "S", "O"):
            return True
        if prev_type != etype:
            return True
    return False


def _start_of_chunk(prev_prefix: str, prefix: str, prev_type: str, etype: str) -> bool:
    # conlleval's startOfChunk, with BIOES prefixes.
    if prefix in ("B", "S"):
        return True
    if prefix in ("I", "E"):
        if prev_prefix in ("E", "S", "O"):
            return True
        if prev_type != etype:
            return True
    return False


def spans(tags: Sequence[str]) -> list[Span]:
    """Entity spans ``(type, start, end)`` read as conlleval (and seqeval's default mode) read them."""
    out: list[Span] = []
    prev_prefix, prev_type = "O", ""
    start = 0
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, etype = split_tag(tag)
        if prev_prefix != "O" and _end_of_chunk(prev_prefix, prefix, prev_type, etype):
            out.append((prev_type, start, i))
        if prefix != "O" and _start_of_chunk(prev_prefix, prefix, prev_type, etype):
            start = i
        # conlleval treats an entity's type change mid-chunk as a new chunk; the
        # logic above already closes and opens there.
        prev_prefix, prev_type = prefix, etype
    return out


def from_spans(entities: Iterable[Span], length: int, scheme: str) -> list[str]:
    """Tags of a sentence of ``length`` tokens holding ``entities`` (non-overlapping), in ``scheme``."""
    tags = ["O"] * length
    ordered = sorted(entities, key=lambda s: s[1])
    prev_end, prev_type = -1, None
    for etype, start, end in ordered:
        for i in range(start, end):
            tags[i] = "I-" + etype
        if scheme == "iob2":
            tags[start] = "B-" + etype
        elif scheme == "iob1":
            if start == prev_end and etype == prev_type:
                tags[start] = "B-" + etype
        else:  # bioes
            if end - start == 1:
                tags[start] = "S-" + etype
            else:
                tags[start] = "B-" + etype
                tags[end - 1] = "E-" + etype
        prev_end, prev_type = end, etype
    return tags


def convert(tags: Sequence[str], target: str, source: str | None = None) -> list[str]:
    """Convert one sentence's tags to ``target`` (the source scheme is read from the prefixes)."""
    return from_spans(spans(tags), len(tags), normalize_scheme(target))


def violations(tags: Sequence[str], scheme: str) -> list[int]:
    """Positions whose tag ``scheme`` forbids after the previous tag (or at the end).

    IOB2 forbids ``I-X`` unless it follows ``B-X``/``I-X``; IOB1 and IOB2
    forbid ``E-``/``S-``; BIOES additionally requires ``B-X``/``I-X`` to be
    followed by ``I-X``/``E-X``. IOB1 tolerates ``B-X`` where ``I-X`` would do
    (after ``O``, say): the entity is the same, and such files are common.
    A position equal to ``len(tags)`` means the sentence ends inside an entity.
    """
    bad: list[int] = []
    prev_prefix, prev_type = "O", ""
    for i, tag in enumerate(tags):
        prefix, etype = split_tag(tag)
        inside_same = prev_prefix in ("B", "I") and prev_type == etype
        if scheme in ("iob1", "iob2") and prefix in ("E", "S"):
            bad.append(i)
        elif scheme == "iob2" and prefix == "I" and not inside_same:
            bad.append(i)
        elif scheme == "bioes":
            if prev_prefix in ("B", "I") and not (prefix in ("I", "E") and prev_type == etype):
                bad.append(i)
            elif prefix in ("I", "E") and not inside_same:
                bad.append(i)
        prev_prefix, prev_type = prefix, etype
    if scheme == "bioes" and prev_prefix in ("B", "I"):
        bad.append(len(tags))
    return bad


def tag_set(types: Iterable[str], scheme: str) -> list[str]:
    """All tags of ``scheme`` for entity ``types``: ``O`` first, then by type."""
    prefixes = {"iob1": "BI", "iob2": "BI", "bioes": "BIES"}[normalize_scheme(scheme)]
    return ["O"] + [f"{p}-{t}" for t in sorted(set(types)) for p in prefixes]


def allowed(tags: Sequence[str], scheme: str) -> tuple[list[list[int]], list[int], list[int]]:
    """Transitions, start tags and end tags that ``scheme`` allows, as CRF constraints.

    Returns:
        ``(pairs, starts, ends)`` with tag indices into ``tags``.
    """
    scheme = normalize_scheme(scheme)
    pairs = [[i, j] for i in range(len(tags)) for j in range(len(tags))
             if 1 not in violations([tags[i], tags[j]], scheme)]
    starts = [j for j in range(len(tags)) if 0 not in violations([tags[j]], scheme)]
    ends = [i for i in range(len(tags)) if 1 not in violations([tags[i]], scheme)]
    return pairs, starts, ends
