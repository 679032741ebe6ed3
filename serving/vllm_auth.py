"""ASGI middleware for vLLM that asks for the API key on every route, not only on /v1.

vLLM's own `--api-key` check guards only paths under /v1, /v2, /inference and /cohere. vllm 0.32 also
serves, without any key: `POST /adapters` and `DELETE /adapters/{name}` (load and unload LoRA adapters),
`POST /invocations` (generation), `/tokenize`, `/detokenize`, `/generative_scoring`, `/scale_elastic_ep`,
`/docs` and `/openapi.json`. Binding 127.0.0.1 keeps other machines out, but any local process could unload
the adapter being served. VLLMServer passes `--middleware serving.vllm_auth.RequireKeyEverywhere`; the key is
read from $VLLM_API_KEY (as vLLM itself does). Read-only health probes stay open.

    python -m serving.vllm_entry serve MODEL ... --middleware serving.vllm_auth.RequireKeyEverywhere
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

OPEN_PATHS = frozenset({"/health", "/ping", "/version", "/metrics", "/load"})  # probes: no model or adapter access
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class RequireKeyEverywhere:
    """Refuse (401) any HTTP or websocket request without `Authorization: Bearer <key>` except OPEN_PATHS."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], api_key: str | None = None):
        self.app = app
        key = os.environ.get("VLLM_API_KEY", "") if api_key is None else api_key
        self._key_digest = hashlib.sha256(key.encode("utf-8")).digest() if key else None

    def authorized(self, scope: Scope) -> bool:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or self._key_digest is None:
            return False
        return hmac.compare_digest(hashlib.sha256(token.encode("utf-8")).digest(), self._key_digest)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._key_digest is None or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        path = scope["path"].removeprefix(scope.get("root_path", "")) or "/"
        if path.rstrip("/") in OPEN_PATHS or self.authorized(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"error": "Unauthorized"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
