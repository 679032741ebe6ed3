"""ASGI middleware run INSIDE the vLLM process: adapters by name, resolved in the server's own adapters folder.

    GET  /v1/adapters                      -> {"object": "list", "data": [AdapterStatus as JSON, ...]}
    POST /v1/adapters/{name}/load          -> {"served": "huanhuan"}        (already loaded: its served name)
    POST /v1/adapters/{name}/reload        -> {"served": "huanhuan@2"}      (fresh served name, old one unloaded)
    POST /v1/adapters/{name}/unload        -> {"unloaded": "huanhuan@2"}
    a refusal                              -> HTTP 400 {"error": {"message": "<every reason>"}}

Every answer carries the `x-adapter-registry: 1` header, so a client tells these routes from a server that
lacks them (a plain vLLM answers 404 without it). The folder, base model, served base name and rank limit come
from $SERVING_ADAPTERS_DIR, $SERVING_BASE_MODEL, $SERVING_SERVED_BASE_NAME and $SERVING_MAX_LORA_RANK (set by
VLLMServer); without a folder the middleware passes everything through. VLLMServer lists it before
`serving.vllm_auth.RequireKeyEverywhere`, so the key check wraps these routes too.

The name is validated once here (serving.adapter_service, one lock per name); the load itself is handed to
vLLM by re-sending the request, inside this process, to vLLM's own public `/v1/load_lora_adapter` and
`/v1/unload_lora_adapter` routes (what is loaded is read from its `/v1/models`). That keeps vLLM's own checks
and its per-name lock, and depends only on vLLM's documented HTTP API, not on its internal
`OpenAIServingModels` object, whose attributes change between releases.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from serving.adapter_service import AdapterService
from serving.adapters import AdapterRegistry
from serving.protocol import AdapterError

ENV_ADAPTERS_DIR = "SERVING_ADAPTERS_DIR"
ENV_BASE_MODEL = "SERVING_BASE_MODEL"
ENV_MAX_LORA_RANK = "SERVING_MAX_LORA_RANK"
ENV_SERVED_BASE_NAME = "SERVING_SERVED_BASE_NAME"  # no adapter may take the base's served name
REGISTRY_HEADER = "x-adapter-registry"
ROUTE = re.compile(r"^/v1/adapters(?:/(?P<name>.+)/(?P<action>load|unload|reload))?/?$")  # bad names: refused
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
_request_scope: ContextVar[Scope] = ContextVar("adapter_request_scope")  # the request an action serves


class VLLMBackend:
    """Load, unload and list through vLLM's own routes, called in-process with the caller's credentials."""

    def __init__(self, app: ASGIApp, loop: asyncio.AbstractEventLoop):
        self.app = app
        self.loop = loop

    def loaded(self) -> list[str]:
        status, body = self._call("GET", "/v1/models", None)
        if status != 200:
            raise AdapterError(f"could not list the served models (HTTP {status}): {_reason(body)}")
        return [model["id"] for model in json.loads(body).get("data", []) if model.get("parent")]

    def load(self, served_name: str, path: Path) -> None:
        self._post("/v1/load_lora_adapter", {"lora_name": served_name, "lora_path": str(path)}, "load")

    def unload(self, served_name: str) -> None:
        self._post("/v1/unload_lora_adapter", {"lora_name": served_name}, "unload")

    def _post(self, path: str, payload: dict[str, str], action: str) -> None:
        status, body = self._call("POST", path, json.dumps(payload).encode())
        if status >= 400:
            raise AdapterError(f"vLLM could not {action} adapter '{payload['lora_name']}': {_reason(body)}")

    def _call(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        """From a worker thread: run one request through vLLM's app on the server's event loop."""
        future = asyncio.run_coroutine_threadsafe(
            call_app(self.app, _request_scope.get(), method, path, body), self.loop
        )
        return future.result()


async def call_app(app: ASGIApp, original: Scope, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
    """Send one request to `app` as a copy of `original` (its app, state and Authorization kept)."""
    content = body or b""
    kept = [(k, v) for k, v in original.get("headers", []) if k.lower() == b"authorization"]
    headers = [*kept, (b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    scope = {**original, "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": headers}  # fmt: skip
    done = asyncio.Event()
    sent_body = False
    status, chunks = 500, []

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": content, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    await app(scope, receive, send)
    done.set()
    return status, b"".join(chunks)


def _reason(body: bytes) -> str:
    from serving.openai_errors import error_reason

    try:
        return error_reason(json.loads(body)) or body.decode("utf-8", "replace")
    except (ValueError, UnicodeDecodeError):
        return body.decode("utf-8", "replace").strip()


class AdapterRoutes:
    """The `/v1/adapters` routes in front of vLLM; every other request goes to vLLM unchanged."""

    def __init__(self, app: ASGIApp, adapters_dir: str | None = None, max_rank: int | None = None):
        """vLLM builds it with `app` only: the rest comes from the environment VLLMServer sets."""
        self.app = app
        folder = adapters_dir or os.environ.get(ENV_ADAPTERS_DIR, "")
        rank = max_rank or int(os.environ.get(ENV_MAX_LORA_RANK) or 0) or None
        self.registry = None
        if folder:
            base = os.environ.get(ENV_BASE_MODEL) or None
            served_base = os.environ.get(ENV_SERVED_BASE_NAME) or None
            self.registry = AdapterRegistry(Path(folder), base_model_path=base, max_rank=rank, served_base=served_base)
        self.service: AdapterService | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "").removeprefix(scope.get("root_path", ""))
        match = ROUTE.match(path) if scope["type"] == "http" and self.registry is not None else None
        if match is None:
            await self.app(scope, receive, send)
            return
        if self.service is None:
            self.service = AdapterService(self.registry, VLLMBackend(self.app, asyncio.get_running_loop()))
        name, action = match["name"], match["action"]
        expected = "POST" if action else "GET"
        if scope.get("method") != expected:
            await _respond(send, 405, {"error": {"message": f"use {expected} on {path}"}})
            return
        _request_scope.set(scope)
        status, payload = await asyncio.to_thread(self._answer, name, action)  # file checks off the event loop
        await _respond(send, status, payload)

    def _answer(self, name: str | None, action: str | None) -> tuple[int, dict[str, Any]]:
        assert self.service is not None
        try:
            if action is None:
                return 200, {"object": "list", "data": [status.to_json() for status in self.service.statuses()]}
            if action == "unload":
                self.service.unload(name or "")
                return 200, {"unloaded": name}
            served = self.service.load(name or "") if action == "load" else self.service.reload(name or "")
            return 200, {"served": served}
        except AdapterError as error:
            return 400, {"error": {"message": str(error), "type": "AdapterError", "code": 400}}


async def _respond(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (REGISTRY_HEADER.encode(), b"1")]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
