"""The HTTP clients every caller of an OpenAI-compatible server uses, and the one retry of a broken connection.

Keep-alive connections are dropped by the client after IDLE_CONNECTION_EXPIRY_S idle, before vLLM's server
closes them (its uvicorn keep-alive timeout is 5 s, `VLLM_HTTP_TIMEOUT_KEEP_ALIVE`). With equal timeouts (both
httpx and uvicorn default to 5 s) a request can go out on a connection the server is closing at that moment;
under many users that happened (the app's turn failed with "Connection error"). `once_more_if_broken` covers
servers with a shorter timeout: a request whose connection broke before any answer is sent once more.

A client for a loopback URL (localhost, 127.0.0.0/8, ::1, or the unspecified 0.0.0.0 / ::, which reach this
machine too) ignores the proxy environment variables (http_proxy, HTTPS_PROXY, ALL_PROXY, ...): on a cluster
that sets a proxy without no_proxy, requests to our own server would otherwise go to the proxy, key and
prompts included. A remote URL (`--base-url https://api.example.com/v1`) still goes through the proxies set.

    client = openai_client("http://127.0.0.1:8000/v1", api_key, timeout_s=600)
    models = once_more_if_broken(lambda: list(client.models.list()))
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

IDLE_CONNECTION_EXPIRY_S = 2.0  # well under vLLM's 5 s keep-alive timeout
MAX_CONNECTIONS = 1000  # openai's own defaults
MAX_KEEPALIVE_CONNECTIONS = 100

Result = TypeVar("Result")


def is_loopback_url(url: str) -> bool:
    """True when `url` names this machine: localhost, 127.0.0.0/8, ::1, or the unspecified 0.0.0.0 / ::."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def uses_proxy_settings(url: str) -> bool:
    """Whether a client for `url` follows the proxy environment variables: only for a server on another host."""
    return not is_loopback_url(url)


def openai_client(base_url: str, api_key: str, timeout_s: float) -> Any:
    """An openai client without its own retries, whose idle connections expire before the server closes them."""
    import httpx2
    import openai

    limits = httpx2.Limits(
        max_connections=MAX_CONNECTIONS,
        max_keepalive_connections=MAX_KEEPALIVE_CONNECTIONS,
        keepalive_expiry=IDLE_CONNECTION_EXPIRY_S,
    )
    http_client = openai.DefaultHttpxClient(limits=limits, timeout=timeout_s, trust_env=uses_proxy_settings(base_url))
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout_s, http_client=http_client)


def adapter_client(base_url: str, api_key: str, timeout_s: float) -> Any:
    """A plain httpx client for the routes openai does not cover (`/v1/adapters`, `/v1/load_lora_adapter`)."""
    import httpx

    return httpx.Client(
        base_url=base_url.rstrip("/") + "/",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=timeout_s,
        limits=httpx.Limits(keepalive_expiry=IDLE_CONNECTION_EXPIRY_S),
        trust_env=uses_proxy_settings(base_url),
    )


def once_more_if_broken(call: Callable[[], Result]) -> Result:
    """Run `call`; when its connection broke before any answer (not a timeout), run it once more.

    Nothing ran on the server for a request without an answer (vLLM aborts a request whose connection is gone), so
    a second try is safe; a second failure is raised.
    """
    import openai

    try:
        return call()
    except openai.APITimeoutError:
        raise
    except openai.APIConnectionError:
        return call()
