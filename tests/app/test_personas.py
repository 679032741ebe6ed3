"""app/personas.py: the Zhen Huan preset is the sentence training renders its examples with; presets by name."""

from __future__ import annotations

from app.personas import CUSTOM_PERSONA, DEFAULT_PERSONA, PERSONAS, persona_text
from training.config import TrainArgs


def test_the_default_preset_is_the_persona_the_adapter_was_trained_with() -> None:
    assert PERSONAS[DEFAULT_PERSONA] == TrainArgs().system_prompt
    assert "甄嬛" in persona_text(DEFAULT_PERSONA)


def test_custom_keeps_what_the_user_typed() -> None:
    assert persona_text(CUSTOM_PERSONA) is None and CUSTOM_PERSONA not in PERSONAS
