"""OpenAIEngine over HTTP against the `/v1/adapters` routes (serving.adapter_routes) and against a server
without them. Fast: the app behind the middleware is a small stand-in for vLLM's own routes (`/v1/models`,
`/v1/load_lora_adapter`, `/v1/unload_lora_adapter`, key required), served by uvicorn on 127.0.0.1; the real
vLLM process runs the same middleware in test_vllm_integration.py.

    .venv/bin/python -m pytest tests/serving/test_adapter_routes.py
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serving.adapter_routes import AdapterRoutes
from serving.openai_engine import OpenAIEngine
from serving.protocol import AdapterError
from serving.vllm_auth import RequireKeyEverywhere
from tests.support.serving_test_helpers import write_adapter

KEY = "route-test-key"


class StandInVLLM:
    """vLLM's LoRA routes as plain ASGI: what is loaded, and every request that reached it."""

    def __init__(self) -> None:
        self.loras: dict[str, str] = {}
        self.requests: list[tuple[str, str, dict]] = []

    def app(self):
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, PlainTextResponse
        from starlette.routing import Route

        async def models(request: Request):
            self.requests.append(("GET", "/v1/models", {}))
            data = [{"id": "tiny", "root": "/models/tiny", "parent": None}]
            data += [{"id": name, "root": path, "parent": "tiny"} for name, path in self.loras.items()]
            return JSONResponse({"object": "list", "data": data})

        async def load(request: Request):
            body = await request.json()
            self.requests.append(("POST", "/v1/load_lora_adapter", body))
            if body["lora_name"] in self.loras:
                return JSONResponse({"error": {"message": "already loaded", "code": 400}}, status_code=400)
            self.loras[body["lora_name"]] = body["lora_path"]
            return PlainTextResponse("Success")

        async def unload(request: Request):
            body = await request.json()
            self.requests.append(("POST", "/v1/unload_lora_adapter", body))
            self.loras.pop(body["lora_name"])
            return PlainTextResponse("Success")

        def guarded(handler):
            async def check(request: Request):
                if request.headers.get("authorization") != f"Bearer {KEY}":  # as vLLM's own key check on /v1
                    return JSONResponse({"error": "Unauthorized"}, status_code=401)
                return await handler(request)

            return check

        routes = [
            Route("/v1/models", guarded(models)),
            Route("/v1/load_lora_adapter", guarded(load), methods=["POST"]),
            Route("/v1/unload_lora_adapter", guarded(unload), methods=["POST"]),
        ]
        return Starlette(routes=routes)


def serve(app) -> Iterator[str]:
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_adapter(tmp_path / "adapters" / "huanhuan")
    write_adapter(tmp_path / "adapters" / "wide", r=16)
    return tmp_path / "adapters"


@pytest.fixture
def vllm() -> StandInVLLM:
    return StandInVLLM()


@pytest.fixture
def managed(vllm: StandInVLLM, folder: Path) -> Iterator[str]:
    """The stand-in behind AdapterRoutes, wrapped by the key middleware, as VLLMServer orders them."""
    routes = AdapterRoutes(vllm.app(), adapters_dir=str(folder), max_rank=8)
    yield from serve(RequireKeyEverywhere(routes, api_key=KEY))


@pytest.fixture
def plain(vllm: StandInVLLM) -> Iterator[str]:
    """A server without the adapter routes (a vLLM started elsewhere)."""
    yield from serve(vllm.app())


def counting(engine: OpenAIEngine) -> list[str]:
    sent: list[str] = []
    engine.http.event_hooks["request"].append(lambda request: sent.append(f"{request.method} {request.url.path}"))
    return sent


def test_an_action_is_one_request_and_the_server_resolves_the_name(
    managed: str, vllm: StandInVLLM, folder: Path
) -> None:
    engine = OpenAIEngine(managed, KEY, "tiny")
    sent = counting(engine)
    assert engine.load_adapter("huanhuan") == "huanhuan"
    assert sent == ["POST /v1/adapters/huanhuan/load"]
    assert [r[2] for r in vllm.requests if r[0] == "POST"] == [
        {"lora_name": "huanhuan", "lora_path": str((folder / "huanhuan").resolve())}
    ]


def test_reload_serves_a_fresh_name_and_the_old_one_is_gone(managed: str, vllm: StandInVLLM) -> None:
    engine = OpenAIEngine(managed, KEY, "tiny")
    engine.load_adapter("huanhuan")
    assert engine.reload_adapter("huanhuan") == "huanhuan@2"
    assert set(vllm.loras) == {"huanhuan@2"}
    served = {info.name for info in engine.models() if info.is_adapter}
    assert served == {"huanhuan@2"}
    statuses = {status.name: status for status in engine.adapters()}
    assert statuses["huanhuan"].served_as == "huanhuan@2" and statuses["huanhuan"].rank == 8
    engine.unload_adapter("huanhuan@2")
    assert vllm.loras == {}


def test_a_refusal_from_the_server_names_every_reason(managed: str, vllm: StandInVLLM) -> None:
    engine = OpenAIEngine(managed, KEY, "tiny")
    with pytest.raises(AdapterError, match="rank 16 is above the server's limit"):
        engine.load_adapter("wide")  # the folder's rank limit is unknown to the client: only the server knows
    with pytest.raises(AdapterError, match="not a valid adapter name"):
        engine.load_adapter("../../etc")
    with pytest.raises(AdapterError, match="no adapter 'elsewhere'"):
        engine.load_adapter("elsewhere")
    assert vllm.loras == {} and not [r for r in vllm.requests if r[0] == "POST"]


def test_the_routes_need_the_key(managed: str) -> None:
    assert httpx.get(managed + "/adapters").status_code == 401
    assert httpx.post(managed + "/adapters/huanhuan/load").status_code == 401


def test_a_server_without_the_routes_lists_its_adapters_and_refuses_loads(plain: str, vllm: StandInVLLM) -> None:
    vllm.loras["someone-elses"] = "/srv/adapters/x"
    engine = OpenAIEngine(plain, KEY, "tiny")
    assert [(s.name, s.served_as, s.in_folder) for s in engine.adapters()] == [
        ("someone-elses", "someone-elses", False)
    ]
    for action in (engine.load_adapter, engine.reload_adapter, engine.unload_adapter):
        with pytest.raises(AdapterError, match="this server does not manage adapters by name"):
            action("huanhuan")
    assert vllm.loras == {"someone-elses": "/srv/adapters/x"}
