"""Unit tests of the incremental `<think>` splitter (serving/reasoning.py).

.venv/bin/python -m pytest tests/serving/test_reasoning.py
"""

from __future__ import annotations

import pytest

from serving.reasoning import ThinkSplitter

REPLY = "<think>\nLet me think about it.\n</think>\n\nThe answer is 42."


def split_all(pieces: list[str], **kwargs) -> tuple[str, str, bool]:
    splitter = ThinkSplitter(**kwargs)
    reasoning, answer = "", ""
    for piece in pieces:
        r, a = splitter.feed(piece)
        reasoning, answer = reasoning + r, answer + a
    r, a = splitter.finish()
    return reasoning + r, answer + a, splitter.closed


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 100])
def test_every_piece_size_gives_the_same_split(size: int) -> None:
    pieces = [REPLY[i : i + size] for i in range(0, len(REPLY), size)]
    reasoning, answer, closed = split_all(pieces)
    assert reasoning == "\nLet me think about it.\n"
    assert answer == "\n\nThe answer is 42."
    assert closed


def test_reply_without_opening_tag_starts_in_thinking() -> None:
    # The Thinking-2507 template opens <think> in the prompt, so the reply only closes it.
    reasoning, answer, closed = split_all(["hmm, so", " </th", "ink>", "Hi"])
    assert (reasoning, answer, closed) == ("hmm, so ", "Hi", True)


def test_reply_that_never_closes_is_all_thinking_and_says_so() -> None:
    reasoning, answer, closed = split_all(["still ", "thinking </thi"])
    assert reasoning == "still thinking </thi"
    assert answer == ""
    assert not closed


def test_text_that_only_looks_like_a_tag_is_kept() -> None:
    reasoning, answer, closed = split_all(["a </", "b> c", "</think>x </think> y"])
    assert reasoning == "a </b> c"
    assert answer == "x </think> y"
    assert closed


def test_model_without_thinking_when_told_so() -> None:
    reasoning, answer, closed = split_all(["Hello", " world"], starts_in_thinking=False)
    assert (reasoning, answer, closed) == ("", "Hello world", False)


def test_opening_tag_split_across_pieces_is_dropped() -> None:
    reasoning, answer, _ = split_all(["<thi", "nk>", "plan", "</think>", "ok"], starts_in_thinking=False)
    assert (reasoning, answer) == ("plan", "ok")
