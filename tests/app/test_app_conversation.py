"""Unit tests of app.conversation: merging deltas into a reply and the history sent back to the engine."""

from __future__ import annotations

from app.conversation import Exchange, Reply, history_for, merge_delta, new_exchange, stop_reply
from serving.protocol import AnswerDelta, FinalDelta, ReasoningDelta


def final(**overrides) -> FinalDelta:
    values = dict(finish_reason="stop", prompt_tokens=5, reasoning_tokens=2, answer_tokens=2,
                  time_to_first_token_s=0.1, total_s=1.0, thinking_closed=True)  # fmt: skip
    values.update(overrides)
    return FinalDelta(**values)


def test_thinking_then_answer_closes_thinking_with_its_duration() -> None:
    reply = Reply(model="base", started_s=10.0)
    merge_delta(reply, ReasoningDelta("let me "), now=10.2)
    merge_delta(reply, ReasoningDelta("think"), now=10.5)
    assert reply.status == "thinking" and reply.thinking_closed is None
    merge_delta(reply, AnswerDelta("Hi"), now=11.2)
    merge_delta(reply, AnswerDelta("!"), now=11.3)
    merge_delta(reply, final(), now=11.4)
    assert reply.thinking == "let me think" and reply.answer == "Hi!"
    assert reply.thinking_closed is True
    assert abs(reply.thinking_s - 1.0) < 1e-9  # from the first thinking piece (10.2) to the first answer (11.2)
    assert abs(reply.first_delta_s - 0.2) < 1e-9
    assert reply.status == "done" and reply.stats.answer_tokens == 2 and reply.pieces == 4


def test_reply_that_never_closes_its_thinking_is_marked() -> None:
    reply = Reply(model="base", started_s=0.0)
    merge_delta(reply, ReasoningDelta("<think> forever"), now=0.1)
    merge_delta(reply, final(finish_reason="length", answer_tokens=0, thinking_closed=False), now=2.1)
    assert reply.thinking_closed is False and reply.answer == ""
    assert reply.status == "done" and abs(reply.thinking_s - 2.0) < 1e-9


def test_cancelled_final_and_stop_mark_the_reply_stopped_keeping_text() -> None:
    reply = Reply(model="a", started_s=0.0)
    merge_delta(reply, AnswerDelta("partial"), now=0.5)
    merge_delta(reply, final(finish_reason="cancelled"), now=0.6)
    assert reply.status == "stopped" and reply.answer == "partial"
    other = Reply(model="b", started_s=0.0)
    merge_delta(other, ReasoningDelta("hmm"), now=0.5)
    stop_reply(other, now=1.5)
    assert other.status == "stopped" and other.thinking == "hmm" and other.thinking_s == 1.0


def _exchange(user: str, left_answer: str, right_answer: str) -> Exchange:
    exchange = new_exchange(user, {"left": "base", "right": "huanhuan"}, now=0.0)
    for side, answer in (("left", left_answer), ("right", right_answer)):
        merge_delta(exchange.replies[side], ReasoningDelta(f"secret thoughts {side}"), now=0.1)
        if answer:
            merge_delta(exchange.replies[side], AnswerDelta(answer), now=0.2)
    return exchange


def test_history_carries_earlier_answers_never_thinking() -> None:
    exchanges = [_exchange("q1", "left a1", "right a1"), _exchange("q2", "left a2", "")]
    left = history_for(exchanges, "left", "persona", next_user="q3")
    assert left == [
        {"role": "system", "content": "persona"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "left a1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "left a2"},
        {"role": "user", "content": "q3"},
    ]
    right = history_for(exchanges, "right", "", next_user="q3")
    # no system prompt; the exchange without an answer on this side is left out so turns alternate
    assert [m["content"] for m in right] == ["q1", "right a1", "q3"]
    assert not any("secret" in m["content"] for m in left + right)
