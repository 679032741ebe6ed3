"""Unit tests of app.validation: values that bypass the page's widgets are refused with a clear message."""

from __future__ import annotations

import pytest

from app.validation import checked_model, clean_message, not_served, sampling_params
from serving.protocol import BadRequestError


def test_good_values_become_sampling_params() -> None:
    params = sampling_params(0.7, 0.9, 20.0, 64, 5, max_tokens_limit=4096)
    assert (params.temperature, params.top_p, params.top_k, params.max_tokens, params.seed) == (0.7, 0.9, 20, 64, 5)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((float("nan"), 0.9, 20, 64, 0), "temperature must be a finite number"),
        ((3.0, 0.9, 20, 64, 0), "temperature must be between 0 and 2"),
        ((0.7, 0.0, 20, 64, 0), "top_p must be in (0, 1]"),
        ((0.7, 0.9, 0, 64, 0), "top_k must be -1 (off) or a positive integer"),
        ((0.7, 0.9, 20, 0, 0), "max new tokens must be a positive integer"),
        ((0.7, 0.9, 20, -5, 0), "max new tokens must be a positive integer"),
        ((0.7, 0.9, 20, 10_000, 0), "max new tokens must be at most 4096"),
        ((0.7, 0.9, 20, 2.5, 0), "max new tokens must be a whole number"),
        (("hot", 0.9, 20, 64, "x"), "seed must be an integer"),
    ],
)
def test_bad_values_are_refused_with_a_sentence(values: tuple, expected: str) -> None:
    with pytest.raises(BadRequestError, match=None) as caught:
        sampling_params(*values, max_tokens_limit=4096)
    assert expected in str(caught.value)


def test_messages_empty_whitespace_and_huge() -> None:
    assert clean_message("", 100) is None and clean_message(" \n\t", 100) is None and clean_message(None, 100) is None
    assert clean_message(" hi ", 100) == " hi "
    with pytest.raises(BadRequestError, match="the limit is 100"):
        clean_message("x" * 101, 100)


def test_malformed_model_names_are_refused_and_unserved_well_formed_ones_go_to_their_side() -> None:
    """checked_model refuses a malformed name; a well-formed one the engine does not offer passes it, and
    not_served then fails its side with a message (tests/app/test_app_turns.py: no engine call is made)."""
    assert checked_model("huanhuan", ["base", "huanhuan"]) == "huanhuan"
    assert checked_model("gone-adapter", ["base"]) == "gone-adapter"
    assert "'gone-adapter' is not served now" in not_served("gone-adapter", ["base"])
    assert not_served("huanhuan", ["base", "huanhuan"]) is None
    for bad in ("../../x", "models/../x", None, "", ".hidden", "a b", "x\n", "x" * 257, "<script>"):
        with pytest.raises(BadRequestError, match="unknown model"):
            checked_model(bad, ["base", "huanhuan"])


@pytest.mark.parametrize("model_id", ["Qwen/Qwen3-4B-Thinking-2507", "qwen3:4b", "/models/x", "org/name@rev"])
def test_model_ids_as_servers_write_them_are_well_formed(model_id: str) -> None:
    assert checked_model(model_id, ["base", model_id]) == model_id
    assert checked_model(model_id, ["base"]) == model_id  # not offered: its side fails, nothing is sent


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1_795_815_137_278, 1_795_815_137_278.0), (12.5, 12.5), (0, 0.0), (-5, 0.0), (True, 0.0), (float("nan"), 0.0),
     (float("inf"), 0.0), ("1795815137278", 0.0), (None, 0.0)],
)  # fmt: skip
def test_a_click_time_is_a_positive_finite_number_else_unknown(value: object, expected: float) -> None:
    from app.click_stamp import click_time

    assert click_time(value) == expected
