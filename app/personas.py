"""System-prompt presets offered by the app. The Zhen Huan persona is the one the adapter was trained with.

The Zhen Huan text lives in common/qwen3.py (training renders its examples with the same sentence, so the
adapter sees what it learned). DEFAULT_PERSONA here is a preset *name* (a key of PERSONAS), not a text.
"""

from __future__ import annotations

from common.qwen3 import ZHEN_HUAN_PERSONA

PERSONAS: dict[str, str] = {
    "Zhen Huan (甄嬛)": ZHEN_HUAN_PERSONA,
    "Helpful assistant": "You are a helpful assistant.",
    "None": "",
}
DEFAULT_PERSONA = "Zhen Huan (甄嬛)"  # the preset selected at start (a key of PERSONAS)
CUSTOM_PERSONA = "Custom"


def persona_text(name: str) -> str | None:
    """The preset's system prompt, or None for "Custom" (keep what the user typed)."""
    return PERSONAS.get(name)
