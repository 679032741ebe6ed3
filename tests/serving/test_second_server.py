"""What differs on a second real OpenAI-compatible server, `transformers serve` (tiny model, merged adapter):
it refuses top_k (a vLLM extension) with 422, and its `/v1/models` fails without a hub cache. The engine
drops top_k for that server after the first refusal (one notice), chats with the ids it was given, and a
refusal keeps the server's own reason. The engine contract itself runs in test_engine_contract.py.

    .venv/bin/python -m pytest tests/serving/test_second_server.py
"""

from __future__ import annotations

import httpx
import openai
import pytest

from serving.openai_errors import engine_error_from
from serving.protocol import ChatRequest, FinalDelta, NoticeDelta, SamplingParams

pytestmark = [pytest.mark.slow, pytest.mark.transformers_serve]
MESSAGES = [{"role": "user", "content": "你是谁？"}]
PARAMS = SamplingParams(temperature=0.0, max_tokens=8)  # top_k=20, the app's default


def test_its_model_list_fails_and_the_engine_still_offers_the_ids_it_was_given(transformers_server) -> None:
    assert httpx.get(transformers_server.base_url + "/models", timeout=30).status_code == 500
    engine = transformers_server.engine()
    infos = engine.models()
    assert [info.name for info in infos] == [transformers_server.base_model, transformers_server.tuned_model]
    assert engine.base_model == "local/tiny-qwen3"
    assert not any(info.listed for info in infos), "offered, but the server itself lists none of them"


def test_its_thinking_arrives_as_reasoning_content(transformers_server) -> None:
    body = {"model": transformers_server.tuned_model, "messages": MESSAGES, "stream": True, "max_tokens": 24}
    text = httpx.post(transformers_server.base_url + "/chat/completions", json=body, timeout=120).text
    assert '"reasoning_content"' in text and '"reasoning"' not in text


def test_top_k_is_refused_once_then_dropped_with_one_notice(transformers_server) -> None:
    engine = transformers_server.engine()
    sides = [ChatRequest(MESSAGES, "base", PARAMS), ChatRequest(MESSAGES, transformers_server.tuned_model, PARAMS)]
    first_turn = [list(stream) for stream in engine.open_streams(sides)]
    notices = [d for deltas in first_turn for d in deltas if isinstance(d, NoticeDelta)]
    assert len(notices) == 1 and "top_k" in notices[0].text
    assert all(isinstance(deltas[-1], FinalDelta) for deltas in first_turn)
    assert engine.server.dropped == {"top_k"}
    second_turn = [list(stream) for stream in engine.open_streams(sides)]
    assert not [d for deltas in second_turn for d in deltas if isinstance(d, NoticeDelta)]


def test_strict_openai_sends_no_extension_and_gets_no_refusal(transformers_server) -> None:
    engine = transformers_server.engine(strict_openai=True)
    deltas = list(engine.stream_chat(MESSAGES, "base", PARAMS))
    assert not any(isinstance(d, NoticeDelta) for d in deltas) and deltas[-1].completion_tokens == 8
    assert engine.server.dropped == frozenset()


def test_a_refusal_keeps_the_status_and_the_servers_reason(transformers_server) -> None:
    client = openai.OpenAI(base_url=transformers_server.base_url, api_key="EMPTY", max_retries=0)
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        client.chat.completions.create(
            model=transformers_server.base_model, messages=MESSAGES, stream=True, max_tokens=4,  # type: ignore[arg-type]
            extra_body={"top_k": 20},
        )  # fmt: skip
    message = str(engine_error_from(refused.value, transformers_server.base_url, "m"))
    assert "the server refused the request (HTTP 422): Unexpected fields in the request: {'top_k'}" in message
