"""Unit tests of app.render: escaping, the thought block's states, the answer block and the stats line."""

from __future__ import annotations

from app.conversation import Exchange, Reply, fail_reply, merge_delta
from app.render import chatbot_messages, reply_messages, stats_line
from serving.protocol import AnswerDelta, FinalDelta, NoticeDelta, ReasoningDelta


def test_user_and_model_text_is_escaped() -> None:
    reply = Reply(model="m")
    merge_delta(reply, ReasoningDelta("<think> <img src=x onerror=alert(1)>"), now=0.1)
    merge_delta(reply, AnswerDelta("<script>alert(1)</script> & done"), now=0.2)
    messages = chatbot_messages([Exchange("<b>hi</b> <think>", {"left": reply})], "left")
    text = "".join(m["content"] for m in messages)
    assert "<script>" not in text and "<img" not in text and "<b>" not in text and "<think>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; done" in text
    assert messages[0] == {"role": "user", "content": "&lt;b&gt;hi&lt;/b&gt; &lt;think&gt;"}


def test_thought_block_open_while_thinking_then_collapsed_with_duration() -> None:
    reply = Reply(model="m", started_s=0.0)
    merge_delta(reply, ReasoningDelta("hmm"), now=0.5)
    thought, *rest = reply_messages(reply)
    assert thought["metadata"]["status"] == "pending" and "hh-thinking" in thought["content"] and not rest
    merge_delta(reply, AnswerDelta("answer"), now=2.0)
    thought, answer = reply_messages(reply)
    assert thought["metadata"] == {"title": "Thought", "status": "done", "duration": 1.5}
    assert "hh-answer" in answer["content"] and "answer" in answer["content"] and "metadata" not in answer


def test_unclosed_thinking_is_shown_open_and_marked() -> None:
    reply = Reply(model="m", started_s=0.0)
    merge_delta(reply, ReasoningDelta("going round"), now=0.5)
    merge_delta(reply, FinalDelta("length", answer_tokens=0, reasoning_tokens=9, thinking_closed=False), now=1.0)
    thought, note = reply_messages(reply)
    assert "never closed" in thought["metadata"]["title"] and "status" not in thought["metadata"]
    assert "(no &lt;/think&gt;)" in thought["metadata"]["title"], "the page renders titles as HTML: tag escaped"
    assert "going round" in thought["content"]
    assert "did not finish thinking" in note["content"] and "max new tokens" in note["content"]


def test_error_lands_in_the_reply_with_partial_text() -> None:
    reply = Reply(model="m")
    merge_delta(reply, AnswerDelta("partial"), now=0.1)
    fail_reply(reply, "adapter 'x' <gone>")
    (answer,) = reply_messages(reply)
    assert "partial" in answer["content"] and "hh-error" in answer["content"]
    assert "adapter 'x' &lt;gone&gt;" in answer["content"]


def test_stats_line_has_ttft_speed_and_token_split() -> None:
    reply = Reply(model="huanhuan", started_s=0.0)
    assert "waiting" in stats_line(reply)
    merge_delta(reply, ReasoningDelta("a"), now=0.3)
    assert "TTFT 0.30 s" in stats_line(reply) and "streaming" in stats_line(reply)
    final = FinalDelta("stop", reasoning_tokens=10, answer_tokens=11, time_to_first_token_s=0.25, total_s=2.25)
    merge_delta(reply, final, now=2.3)
    line = stats_line(reply)
    assert "TTFT 0.25 s" in line and "10.0 tok/s" in line and "thinking 10 tok · answer 11 tok" in line
    assert stats_line(None) == "_no reply yet_"


def test_an_engine_notice_shows_once_in_its_reply_beside_the_answer() -> None:
    reply = Reply(model="m", started_s=0.0)
    merge_delta(reply, NoticeDelta("This server does not take top_k <b>"), now=0.1)
    merge_delta(reply, AnswerDelta("answer"), now=0.2)
    merge_delta(reply, FinalDelta(finish_reason="stop"), now=0.3)
    (answer,) = reply_messages(reply)
    assert answer["content"].count("hh-note") == 1 and "does not take top_k &lt;b&gt;" in answer["content"]
    assert "hh-answer" in answer["content"] and reply.answer == "answer" and reply.status == "done"
