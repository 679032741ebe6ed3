"""System-prompt presets offered by the app. The Zhen Huan persona is the one the adapter was trained with.

The Zhen Huan text is the persona of the public self-llm huanhuan recipe (datawhalechina/self-llm); the
training package renders its examples with the same sentence, so the adapter sees what it learned.
"""

from __future__ import annotations

ZHEN_HUAN = "现在你要扮演皇帝身边的女人--甄嬛"

PERSONAS: dict[str, str] = {
    "Zhen Huan (甄嬛)": ZHEN_HUAN,
    "Helpful assistant": "You are a helpful assistant.",
    "None": "",
}
DEFAULT_PERSONA = "Zhen Huan (甄嬛)"
CUSTOM_PERSONA = "Custom"


def persona_text(name: str) -> str | None:
    """The preset's system prompt, or None for "Custom" (keep what the user typed)."""
    return PERSONAS.get(name)
