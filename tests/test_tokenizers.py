from pathlib import Path

import pytest

from lstmtext.errors import DataError
from lstmtext.tokenizers import EOS_ID, PAD_ID, UNK_ID, load_tokenizer, save_tokenizer, train_tokenizer
from tests.conftest import tiny_sentences


@pytest.mark.parametrize("kind,size", [("unigram", 60), ("bpe", 60), ("char", 40), ("word", 0)])
def test_round_trip_through_file(tmp_path: Path, kind: str, size: int):
    lines = tiny_sentences(200, 0)
    tok = train_tokenizer(lines, size, kind)
    path = tmp_path / "tok.model"
    save_tokenizer(tok, path)
    again = load_tokenizer(path)
    assert again.vocab_size == tok.vocab_size
    for line in lines[:20]:
        ids = again.encode(line)
        assert ids == tok.encode(line)
        assert again.decode(ids) == line
        assert PAD_ID not in ids and EOS_ID not in ids


def test_word_tokenizer_maps_unknown_and_literal_unk():
    tok = train_tokenizer(["a b c", "a b"], 0, "word")
    assert tok.encode("a zzz <unk>") == [tok.encode("a")[0], UNK_ID, UNK_ID]


def test_word_starts_of_subword_pieces():
    tok = train_tokenizer(tiny_sentences(200, 0), 60, "unigram")
    ids = tok.encode("the teacher")
    assert tok.is_word_start(ids[0])
    assert sum(tok.is_word_start(i) for i in ids) == 2


def test_too_large_vocabulary_is_lowered_with_one_warning():
    warnings: list[str] = []
    tok = train_tokenizer(["a b c"] * 5, 500, "unigram", warn=warnings.append)
    assert tok.vocab_size < 500
    assert warnings == [f"warning: vocab_size 500 is more than this text supports; using vocab_size={tok.vocab_size}"]


def test_not_a_tokenizer(tmp_path: Path):
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(DataError, match="bad.model"):
        load_tokenizer(bad)
