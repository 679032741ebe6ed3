"""`python -m serving.chat`: a message the engine refuses before any reply starts (LocalEngine refuses a
conversation too long for the context in `open_streams`) is reported, left out of the history, and the
interactive chat goes on; with `--message` the command ends with exit code 1.

    .venv/bin/python -m pytest tests/serving/test_chat.py
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from serving import chat
from serving.protocol import BadRequestError, ChatMessage, ChatRequest, SamplingParams
from tests.app.fake_engine import FakeEngine, FakeStream

TOO_LONG = "the conversation is too long for the model's context: ... Clear the chat, shorten it."


class RefusesLongMessages(FakeEngine):
    """Refuses, as LocalEngine does before any reply starts, every turn whose last message is "long"."""

    def open_streams(self, requests: Sequence[ChatRequest]) -> list[FakeStream]:
        if requests[-1].messages[-1]["content"] == "long":
            raise BadRequestError(TOO_LONG)
        return super().open_streams(requests)


def typed(lines: list[str]) -> Iterator[str]:
    """What the user types at the `you>` prompt, then Ctrl-D."""
    yield from lines
    raise EOFError


def test_a_refused_message_is_reported_and_leaves_the_history_as_it_was(capsys) -> None:
    engine = RefusesLongMessages(adapters={"huanhuan": Path("huanhuan")})
    histories: dict[str, list[ChatMessage]] = {"base": [], "huanhuan": []}
    assert chat.chat_turn(engine, histories, "long", SamplingParams(), show=False) is False
    assert histories == {"base": [], "huanhuan": []}
    assert TOO_LONG in capsys.readouterr().err
    assert chat.chat_turn(engine, histories, "hi", SamplingParams(), show=False) is True
    assert [message["content"] for message in histories["base"]] == ["hi", "Hello there!"]


def test_the_interactive_chat_goes_on_after_a_refused_message(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    engine = RefusesLongMessages()
    lines = typed(["hi", "long", "again"])
    monkeypatch.setattr(chat, "make_engine", lambda args: engine)
    monkeypatch.setattr("builtins.input", lambda prompt: next(lines))
    assert chat.main([]) == 0
    assert [[m["content"] for m in request.messages] for request in engine.requests] == [
        ["hi"],
        ["hi", "Hello there!", "again"],  # the refused message is not in the history
    ]
    assert TOO_LONG in capsys.readouterr().err


def test_a_refused_message_given_with_message_ends_the_command_with_exit_code_1(monkeypatch, capsys) -> None:
    engine = RefusesLongMessages()
    monkeypatch.setattr(chat, "make_engine", lambda args: engine)
    assert chat.main(["--message", "long", "--message", "hi"]) == 1
    assert engine.requests == [] and TOO_LONG in capsys.readouterr().err
