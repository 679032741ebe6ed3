"""app.hidden_names: whole model names leave an error's text; words that merely contain a name stay."""

from __future__ import annotations

from app.hidden_names import HIDDEN, hide_names


def test_whole_names_are_hidden_longest_first() -> None:
    text = "unknown model 'huanhuan@2' (HTTP 404); Qwen/Qwen3-4B serves huanhuan."
    assert hide_names(text, ["huanhuan", "huanhuan@2", "Qwen/Qwen3-4B"]) == (
        f"unknown model '{HIDDEN}' (HTTP 404); {HIDDEN} serves {HIDDEN}."
    )


def test_a_name_inside_a_longer_word_or_path_stays() -> None:
    text = "the database at /srv/base/x is down; base-2 too"
    assert hide_names(text, ["base"]) == text
    assert hide_names("model 'base' is not served now", ["base", ""]) == f"model '{HIDDEN}' is not served now"
