"""Which request fields outside OpenAI's chat API go to a server: vLLM extensions only where they are taken.

The app sends `top_k`, a vLLM sampling extension. vLLM takes it; OpenAI's own API and transformers' server
refuse an unknown field (400/422). `ServerParams` keeps, per engine (one server), what is known:

- strict (`--strict-openai`): plain OpenAI parameters only, extensions are never sent;
- a server that says it is vLLM (`owned_by: "vllm"` in `/v1/models`): extensions are sent;
- any other server: extensions are sent until a refusal names one; that field is then dropped for this
  server (the request is sent again without it) and the first stream to learn it carries one notice.

    server = ServerParams(strict=False)
    body = server.extension_body(params)             # {"top_k": 20}
    learned, first = server.learn(["top_k"], "Unexpected fields in the request: {'top_k'}")
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

from serving.protocol import SamplingParams

# Fields the app may send that OpenAI's chat completions API does not have (all vLLM sampling extensions).
EXTENSION_FIELDS = ("top_k",)
VLLM_OWNER = "vllm"


def extension_values(params: SamplingParams) -> dict[str, object]:
    """The extension fields of a request, before any server policy (top_k -1 means off: not sent)."""
    return {"top_k": params.top_k} if params.top_k != -1 else {}


def notice_for(fields: Iterable[str]) -> str:
    """The one notice the page shows when a server refused extension fields."""
    names = ", ".join(fields)
    return (
        f"This server does not take {names} (a vLLM extension, not part of OpenAI's API): it is no longer sent "
        "to this server, so that setting has no effect here."
    )


class ServerParams:
    """What one server takes beyond OpenAI's chat API; safe to use from several streams at once."""

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self.known_vllm = False
        self._dropped: set[str] = set()
        self._lock = threading.Lock()

    @property
    def dropped(self) -> frozenset[str]:
        return frozenset(self._dropped)

    def saw_models(self, owners: Iterable[object]) -> None:
        """Record the `owned_by` of the listed models: vLLM names itself there."""
        if any(owner == VLLM_OWNER for owner in owners):
            self.known_vllm = True

    def extension_body(self, params: SamplingParams) -> dict[str, object]:
        """The extension fields to send to this server now (none when strict, none it refused)."""
        if self.strict:
            return {}
        with self._lock:
            return {key: value for key, value in extension_values(params).items() if key not in self._dropped}

    def learn(self, sent: Iterable[str], refusal: str) -> tuple[list[str], bool]:
        """The sent extension fields a refusal names (to drop), and whether this call is the first to drop them.

        A server known to be vLLM takes every extension: a refusal that names one is about its value, never
        learned from.
        """
        if self.known_vllm:
            return [], False
        named = [key for key in sent if re.search(rf"(?<![A-Za-z0-9_]){re.escape(key)}(?![A-Za-z0-9_])", refusal)]
        with self._lock:
            new = [key for key in named if key not in self._dropped]
            self._dropped.update(named)
        return named, bool(new)
