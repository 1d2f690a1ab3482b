"""``split_utf8``: cut text into pieces of at most N UTF-8 bytes, never inside a character."""

from __future__ import annotations

import itertools
import random

import pytest

from roomstreams.protocol.chunking import split_utf8, utf8_len
from roomstreams.protocol.limits import MAX_CHUNK_BYTES

# 1, 2, 3 and 4 bytes in UTF-8
CHARS = ["a", "é", "€", "😀"]


def assert_valid_split(text: str, max_bytes: int) -> list[str]:
    pieces = list(split_utf8(text, max_bytes))
    assert "".join(pieces) == text
    for p in pieces:
        assert p, "an empty piece"
        assert utf8_len(p) <= max_bytes
        p.encode("utf-8")  # no half characters (a lone surrogate would raise)
    # greedy: a piece is only cut short when the next character would not fit
    for p, nxt in itertools.pairwise(pieces):
        assert utf8_len(p) + utf8_len(nxt[0]) > max_bytes
    return pieces


@pytest.mark.parametrize("max_bytes", range(4, 11))
@pytest.mark.parametrize("offset", range(11))
@pytest.mark.parametrize("char", CHARS)
def test_cut_never_splits_a_character_at_any_offset(max_bytes: int, offset: int, char: str) -> None:
    # ``offset`` ASCII bytes first, so the character straddles every possible cut position
    text = "x" * offset + char * 5 + "y"
    assert_valid_split(text, max_bytes)


@pytest.mark.parametrize("max_bytes", range(4, 11))
def test_random_mixes_of_1_to_4_byte_characters(max_bytes: int) -> None:
    rng = random.Random(max_bytes)
    for _ in range(200):
        text = "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 40)))
        assert_valid_split(text, max_bytes)


def test_four_byte_characters_with_the_minimum_limit() -> None:
    assert list(split_utf8("😀😀a😀", 4)) == ["😀", "😀", "a", "😀"]


def test_exact_fit() -> None:
    assert list(split_utf8("abcdefgh", 4)) == ["abcd", "efgh"]
    assert list(split_utf8("€€", 6)) == ["€€"]
    assert list(split_utf8("€€€", 6)) == ["€€", "€"]


def test_short_text_is_one_piece() -> None:
    assert list(split_utf8("hello")) == ["hello"]
    assert list(split_utf8("😀" * 10, 40)) == ["😀" * 10]


def test_default_limit_is_max_chunk_bytes() -> None:
    text = "é" * MAX_CHUNK_BYTES  # twice the limit in bytes
    pieces = assert_valid_split(text, MAX_CHUNK_BYTES)
    assert list(split_utf8(text)) == pieces
    assert [utf8_len(p) for p in pieces] == [MAX_CHUNK_BYTES, MAX_CHUNK_BYTES]


def test_empty_text_yields_nothing() -> None:
    assert list(split_utf8("")) == []
    assert list(split_utf8("", 4)) == []


@pytest.mark.parametrize("max_bytes", [-1, 0, 1, 2, 3])
def test_limit_below_four_bytes_is_refused(max_bytes: int) -> None:
    with pytest.raises(ValueError, match="at least 4"):
        list(split_utf8("abc", max_bytes))


def test_utf8_len() -> None:
    assert [utf8_len(c) for c in CHARS] == [1, 2, 3, 4]
    assert utf8_len("") == 0
