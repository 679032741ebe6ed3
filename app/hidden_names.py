"""Model names taken out of a side's error text while blind mode hides which model is which.

An error such as "model 'huanhuan' is not served now" would tell the person which side runs the adapter
before the vote. Each name is replaced where it stands as a whole name (not inside a longer word):

    >>> hide_names("unknown model 'huanhuan' (HTTP 404)", ["huanhuan", "Qwen/Qwen3-4B"])
    "unknown model '‹hidden›' (HTTP 404)"
"""

from __future__ import annotations

import re
from collections.abc import Iterable

HIDDEN = "‹hidden›"


def hide_names(text: str, names: Iterable[str]) -> str:
    """`text` with every whole occurrence of each name replaced by HIDDEN (longest names first)."""
    for name in sorted({name for name in names if name}, key=len, reverse=True):
        text = re.sub(rf"(?<![\w./-]){re.escape(name)}(?![\w/-])", HIDDEN, text)
    return text
