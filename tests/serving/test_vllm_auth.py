"""Unit tests of serving.vllm_auth.RequireKeyEverywhere on a small Starlette app shaped like vLLM's routes.

The real vLLM server runs with it (see tests/reliability/test_reliability_vllm_security.py); here each rule
is checked fast.

    .venv/bin/python -m pytest tests/serving/test_vllm_auth.py
"""

from __future__ import annotations

import pytest

from serving.vllm_auth import RequireKeyEverywhere

KEY = "the-right-key"
ROUTES = [
    ("POST", "/adapters"), ("DELETE", "/adapters/huanhuan"), ("POST", "/invocations"), ("POST", "/tokenize"),
    ("GET", "/docs"), ("GET", "/openapi.json"), ("POST", "/v1/load_lora_adapter"), ("GET", "/v1/models"),
]  # fmt: skip


@pytest.fixture(scope="module")
def client():
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    def ok(_request):
        return PlainTextResponse("reached")

    paths = sorted({path for _, path in ROUTES} | {"/health", "/metrics", "/ping", "/version"})
    routes = [Route(path, ok, methods=["GET", "POST", "DELETE"]) for path in paths]
    app = Starlette(routes=routes, middleware=[Middleware(RequireKeyEverywhere, api_key=KEY)])
    return TestClient(app)


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_routes_need_the_key(client, method: str, path: str) -> None:
    assert client.request(method, path).status_code == 401
    assert client.request(method, path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.request(method, path, headers={"Authorization": f"Basic {KEY}"}).status_code == 401
    answer = client.request(method, path, headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 200 and answer.text == "reached"


@pytest.mark.parametrize("path", ["/health", "/metrics", "/ping", "/version"])
def test_read_only_probes_stay_open(client, path: str) -> None:
    assert client.get(path).status_code == 200


def test_lookalike_paths_are_not_probes(client) -> None:
    assert client.get("/health/../adapters").status_code in (401, 404)
    assert client.post("/healthz").status_code == 401


def test_no_key_configured_leaves_vllm_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    calls = []

    async def app(scope, receive, send):
        calls.append(scope["path"])

    import asyncio

    asyncio.run(RequireKeyEverywhere(app)({"type": "http", "path": "/adapters", "headers": []}, None, None))
    assert calls == ["/adapters"]
