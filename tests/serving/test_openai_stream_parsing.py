"""Unit tests of how OpenAIEngine reads streamed chunks (serving.reasoning.split_reply, the pure step its streams
run, and openai_stream.final_delta): `delta.reasoning` (vLLM), `delta.reasoning_content`
(older vLLM, DeepSeek-style APIs) and inline `<think>` text (a server without a reasoning parser).

Chunks are real `openai` ChatCompletionChunk objects built from the JSON a server sends.

    .venv/bin/python -m pytest tests/serving/test_openai_stream_parsing.py
"""

from __future__ import annotations

import pytest
from openai.types.chat import ChatCompletionChunk

from serving.openai_stream import final_delta
from serving.protocol import AnswerDelta, FinalDelta, ReasoningDelta
from serving.reasoning import reasoning_of, split_reply


def chunk(delta: dict | None = None, finish: str | None = None, usage: dict | None = None) -> ChatCompletionChunk:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    body = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": choices}
    if usage is not None:
        body["usage"] = usage
    return ChatCompletionChunk.model_validate(body)


def read(chunks: list[ChatCompletionChunk], starts_in_thinking: bool = True) -> list:
    """The deltas OpenAIStream yields for these chunks: the pure split, then the FinalDelta from the usage."""
    choices = [choice for c in chunks for choice in c.choices]
    pieces = [(reasoning_of(choice.delta), choice.delta.content or "") for choice in choices]
    deltas, closed = split_reply(pieces, starts_in_thinking)
    usage = next((c.usage for c in reversed(chunks) if c.usage is not None), None)
    finish = next((choice.finish_reason for choice in reversed(choices) if choice.finish_reason), "stop")
    counts = [sum(isinstance(d, kind) for d in deltas) for kind in (ReasoningDelta, AnswerDelta)]
    return [*deltas, final_delta(finish, usage, *counts, None, 0.0, closed)]


USAGE = {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_reasoning_fields_of_the_server(field: str) -> None:
    deltas = read([
        chunk({"role": "assistant", "content": ""}),
        chunk({field: "let me "}), chunk({field: "think"}),
        chunk({"content": "Hello"}), chunk({"content": "!"}, finish="stop"),
        chunk(usage=USAGE),
    ])  # fmt: skip
    assert deltas[:-1] == [ReasoningDelta("let me "), ReasoningDelta("think"), AnswerDelta("Hello"), AnswerDelta("!")]
    final = deltas[-1]
    assert isinstance(final, FinalDelta) and final.finish_reason == "stop" and final.thinking_closed
    assert (final.prompt_tokens, final.completion_tokens, final.reasoning_tokens) == (9, 5, 2)


def test_inline_think_tags_are_split_when_the_server_has_no_parser() -> None:
    pieces = ["<think>\nplan", " it</th", "ink>\n\nThe ", "answer"]
    deltas = read([chunk({"content": p}) for p in pieces] + [chunk({}, finish="stop"), chunk(usage=USAGE)])
    reasoning = "".join(d.text for d in deltas if isinstance(d, ReasoningDelta))
    answer = "".join(d.text for d in deltas if isinstance(d, AnswerDelta))
    assert (reasoning, answer) == ("\nplan it", "\n\nThe answer")
    assert deltas[-1].thinking_closed


def test_reply_that_never_closes_thinking_is_delivered_and_flagged() -> None:
    deltas = read([chunk({"reasoning": "hmm"}), chunk({"reasoning": " more"}, finish="length"), chunk(usage=USAGE)])
    assert deltas[:-1] == [ReasoningDelta("hmm"), ReasoningDelta(" more")]
    assert deltas[-1].finish_reason == "length" and not deltas[-1].thinking_closed


def test_plain_model_without_thinking() -> None:
    deltas = read([chunk({"content": "Hi there"}, finish="stop")], starts_in_thinking=False)
    assert deltas[:-1] == [AnswerDelta("Hi there")]
    assert deltas[-1].answer_tokens == 1  # no usage sent: counted from the pieces
    assert deltas[-1].thinking_closed  # nothing was left open
