"""Unit tests of what OpenAIEngine sends beyond OpenAI's chat API and how it reads a server's refusal.

Refusals are built by the real `openai` client from real HTTP responses, in the shapes servers send:
vLLM / OpenAI (`{"error": {"message"}}`), FastAPI servers such as `transformers serve` (`{"detail": ...}`)
and plain text. The same paths run against the real servers in test_engine_contract.py.

    .venv/bin/python -m pytest tests/serving/test_openai_server_params.py
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from serving.openai_errors import engine_error_from, refusal_reason
from serving.openai_params import ServerParams
from serving.protocol import BadRequestError, EngineUnavailableError, SamplingParams

TRANSFORMERS_422 = {"detail": "Unexpected fields in the request: {'top_k'}"}
OPENAI_400 = {"error": {"message": "Unrecognized request argument supplied: top_k", "type": "invalid_request_error"}}


def status_error(status: int, body: object) -> openai.APIStatusError:
    """The exception the openai client raises for this HTTP answer (its own parser builds it)."""
    content = json.dumps(body) if not isinstance(body, str) else body
    request = httpx.Request("POST", "http://server/v1/chat/completions")
    response = httpx.Response(status, content=content.encode(), request=request)
    return openai.OpenAI(api_key="x", base_url="http://server/v1")._make_status_error_from_response(response)


def test_extensions_go_out_until_a_refusal_names_them() -> None:
    server = ServerParams()
    assert server.extension_body(SamplingParams(top_k=20)) == {"top_k": 20}
    assert server.extension_body(SamplingParams(top_k=-1)) == {}  # -1 is "off": nothing to send
    dropped, first = server.learn(["top_k"], refusal_reason(status_error(422, TRANSFORMERS_422)))
    assert (dropped, first) == (["top_k"], True)
    assert server.extension_body(SamplingParams(top_k=20)) == {}
    assert server.learn(["top_k"], "Unexpected fields in the request: {'top_k'}") == (["top_k"], False)  # once


@pytest.mark.parametrize(
    ("refusal", "learned"),
    [
        (refusal_reason(status_error(400, OPENAI_400)), ["top_k"]),
        ("extra_forbidden: body.top_k: Extra inputs are not permitted", ["top_k"]),
        ("temperature must be at most 2", []),  # a refusal about something else teaches nothing
        ("unknown field top_kx", []),
    ],
)
def test_only_a_refusal_naming_the_field_drops_it(refusal: str, learned: list[str]) -> None:
    assert ServerParams().learn(["top_k"], refusal)[0] == learned


def test_strict_sends_no_extension_and_vllm_is_never_second_guessed() -> None:
    assert ServerParams(strict=True).extension_body(SamplingParams(top_k=20)) == {}
    vllm = ServerParams()
    vllm.saw_models(["vllm"])
    assert vllm.learn(["top_k"], "top_k must be -1 (disable), or at least 1, got 0.") == ([], False)
    assert vllm.extension_body(SamplingParams(top_k=20)) == {"top_k": 20}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (422, TRANSFORMERS_422, "the server refused the request (HTTP 422): Unexpected fields in the request"),
        (422, {"detail": [{"loc": ["body", "model"], "msg": "Field required"}]}, "(HTTP 422): body.model: Field"),
        (400, OPENAI_400, "the server refused the request (HTTP 400): Unrecognized request argument supplied"),
        (400, {"error": {"message": "max_tokens=9 cannot be greater than max_model_len=8"}}, "max new tokens is too"),
    ],
)
def test_a_refusal_keeps_the_status_and_the_servers_reason(status: int, body: object, expected: str) -> None:
    error = engine_error_from(status_error(status, body), "http://server/v1", "m")
    assert isinstance(error, BadRequestError) and expected in str(error)


def test_a_server_failure_in_plain_text_keeps_its_text() -> None:
    error = engine_error_from(status_error(500, "model loading failed: no such folder"), "http://server/v1", "m")
    assert isinstance(error, EngineUnavailableError)
    assert str(error) == "the model server failed (HTTP 500): model loading failed: no such folder"
