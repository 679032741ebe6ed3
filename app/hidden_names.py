"""Model names taken out of a side's error text while blind mode hides which model is which.

An error such as "model 'huanhuan' is not served now" would tell the person which side runs the adapter
before the vote. Each model is hidden under every name an error may give it: the served name (`huanhuan@2`),
the adapter folder behind it (`huanhuan`, also inside a path) and the last part of an `org/name` id. A name
is replaced where it stands whole, not inside a longer word:

    >>> hide_names("cannot load /srv/adapters/huanhuan/adapter_config.json", ["huanhuan@2", "Qwen/Qwen3-4B"])
    'cannot load /srv/adapters/‹hidden›/adapter_config.json'
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from serving.protocol import folder_of

HIDDEN = "‹hidden›"


def hide_names(text: str, models: Iterable[str]) -> str:
    """`text` with every whole occurrence of each model's names replaced by HIDDEN (longest names first)."""
    for name in sorted(_names_of(models), key=len, reverse=True):
        text = re.sub(rf"(?<![\w.@-]){re.escape(name)}(?![\w@-]|\.\w)", HIDDEN, text)
    return text


def _names_of(models: Iterable[str]) -> set[str]:
    names = set()
    for model in models:
        if model:
            names |= {model, folder_of(model) or model, model.rstrip("/").rsplit("/", 1)[-1]}
    return {name for name in names if len(name) > 1}
