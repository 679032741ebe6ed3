"""OpenAIEngine over HTTP against the `/v1/adapters` routes (serving.adapter_routes) and against a server
without them. Fast: the app behind the middleware is a small stand-in for vLLM's own routes (`/v1/models`,
`/v1/load_lora_adapter`, `/v1/unload_lora_adapter`, key required), served by uvicorn on 127.0.0.1; the real
vLLM process runs the same middleware in test_vllm_integration.py. A wrong key and a failing server are
reported as such, never as a server without the routes.

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

from serving.adapter_routes import ENV_SERVED_BASE_NAME, AdapterRoutes
from serving.openai_engine import OpenAIEngine
from serving.protocol import AdapterError, EngineUnavailableError
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


@pytest.fixture
def failing() -> Iterator[str]:
    """A server whose every route fails with HTTP 500 (a crashed middleware), without the routes' header."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def fail(_request):
        return PlainTextResponse("Internal Server Error", status_code=500)

    yield from serve(Starlette(routes=[Route("/{path:path}", fail, methods=["GET", "POST"])]))


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


@pytest.mark.parametrize("server", ["managed", "plain"])
def test_a_wrong_key_is_named_as_such_and_never_lists_no_adapters(
    server: str, request: pytest.FixtureRequest, vllm: StandInVLLM
) -> None:
    vllm.loras["huanhuan"] = "/srv/adapters/huanhuan"
    engine = OpenAIEngine(request.getfixturevalue(server), "not-the-key", "tiny")  # a base given: models() has ids
    for listing in (engine.adapters, engine.models):
        with pytest.raises(EngineUnavailableError, match=r"refused the API key \(HTTP 401.*VLLM_API_KEY"):
            listing()


def test_a_wrong_key_is_not_taken_for_a_server_without_the_routes(managed: str) -> None:
    engine = OpenAIEngine(managed, "not-the-key", "tiny")
    for action in (engine.load_adapter, engine.reload_adapter, engine.unload_adapter):
        with pytest.raises(EngineUnavailableError, match=r"refused the API key \(HTTP 401.*VLLM_API_KEY") as refused:
            action("huanhuan")
        assert "does not manage adapters" not in str(refused.value)


def test_a_failing_server_is_reported_with_its_status(failing: str) -> None:
    engine = OpenAIEngine(failing, KEY, "tiny")
    with pytest.raises(EngineUnavailableError, match=r"could not list the adapters: .* failed \(HTTP 500\)"):
        engine.adapters()
    with pytest.raises(EngineUnavailableError, match=r"could not load adapter 'huanhuan': .* failed \(HTTP 500\)"):
        engine.load_adapter("huanhuan")


def test_an_adapter_named_like_the_base_is_refused_and_never_loaded(
    managed: str, vllm: StandInVLLM, folder: Path
) -> None:
    write_adapter(folder / "base")
    engine = OpenAIEngine(managed, KEY, "tiny")
    statuses = {status.name: status for status in engine.adapters()}
    assert "the base model's name" in statuses["base"].problems[0]
    with pytest.raises(AdapterError, match="'base' is the base model's name"):
        engine.load_adapter("base")
    with pytest.raises(AdapterError, match="'tiny' is the base model's name"):
        engine.load_adapter_path("tiny", folder / "huanhuan")  # the served base's own name
    assert vllm.loras == {}


def test_the_routes_refuse_the_served_base_name_from_their_environment(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_adapter(folder / "tiny")
    monkeypatch.setenv(ENV_SERVED_BASE_NAME, "tiny")
    routes = AdapterRoutes(StandInVLLM().app(), adapters_dir=str(folder))
    assert [info.name for info in routes.registry.valid()] == ["huanhuan", "wide"]
    assert "'tiny' is the base model's name" in routes.registry.info("tiny").problems[0]
