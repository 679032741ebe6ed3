"""app.hidden_names: every name of a model leaves an error's text; words that merely contain a name stay."""

from __future__ import annotations

from app.hidden_names import HIDDEN, hide_names


def test_whole_names_are_hidden_longest_first() -> None:
    text = "unknown model 'huanhuan@2' (HTTP 404); Qwen/Qwen3-4B serves huanhuan."
    assert hide_names(text, ["huanhuan", "huanhuan@2", "Qwen/Qwen3-4B"]) == (
        f"unknown model '{HIDDEN}' (HTTP 404); {HIDDEN} serves {HIDDEN}."
    )


def test_the_folder_behind_a_served_name_the_last_part_of_an_id_and_paths_are_hidden_too() -> None:
    text = "adapter huanhuan (huanhuan@2) failed: /srv/adapters/huanhuan/adapter_config.json; Qwen3-4B is up"
    assert hide_names(text, ["huanhuan@2", "Qwen/Qwen3-4B"]) == (
        f"adapter {HIDDEN} ({HIDDEN}) failed: /srv/adapters/{HIDDEN}/adapter_config.json; {HIDDEN} is up"
    )


def test_a_name_inside_a_longer_word_stays() -> None:
    text = "the database at /srv/bases/x is down; base-2 and base.txt too"
    assert hide_names(text, ["base"]) == text
    assert hide_names("model 'base' is not served now", ["base", ""]) == f"model '{HIDDEN}' is not served now"
