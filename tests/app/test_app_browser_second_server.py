"""End-to-end on a second real OpenAI-compatible server: the real page in headless chromium over
`transformers serve` (tiny Qwen3 as `local/tiny-qwen3`, the trained adapter merged into a copy served by its
path), started as a new user would point the app at it: default settings (top_k 20, which this server
refuses), ids given on the command line because its `/v1/models` fails.

    .venv/bin/python -m pytest tests/app/test_app_browser_second_server.py
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from app.config import AppArgs
from app.ui import build_demo
from tests.support.browser import AppPage
from tests.support.served_page import serve_demo

pytestmark = [pytest.mark.slow, pytest.mark.transformers_serve, pytest.mark.browser]
MISSING_ID = "local/not-there"  # given on the command line by mistake: the server cannot load it


@pytest.fixture(scope="module")
def app_url(transformers_server) -> Iterator[str]:
    from serving.openai_engine import OpenAIEngine

    engine = OpenAIEngine(
        transformers_server.base_url,
        "EMPTY",
        transformers_server.base_model,
        model_ids=[transformers_server.tuned_model, MISSING_ID],
    )  # as python -m app builds it
    yield from serve_demo(build_demo(engine, AppArgs(max_new_tokens=96)))


def test_a_side_by_side_turn_with_default_settings(app: AppPage, transformers_server) -> None:
    assert app.model_options("right") == ["local/tiny-qwen3 (base)", transformers_server.tuned_model, MISSING_ID]
    app.send("你是谁？")
    app.wait_finished()
    for side in ("left", "right"):
        assert not app.texts(side, "hh-error"), app.texts(side, "hh-error")
        assert not set(app.texts(side, "hh-thinking")) & set(app.texts(side, "hh-answer"))
        assert re.search(r"TTFT \d+\.\d\d s · [\d.]+ tok/s · thinking \d+ tok · answer \d+ tok", app.stats(side))
    assert app.stats("left").startswith("local/tiny-qwen3") and "finish: length" in app.stats("left")
    assert app.texts("left", "hh-thinking") and not app.texts("left", "hh-answer"), "the base only thinks"
    assert app.stats("right").startswith(transformers_server.tuned_model)
    assert app.texts("right", "hh-answer"), "the merged adapter closes its thinking and answers"
    notes = [text for side in ("left", "right") for text in app.texts(side, "hh-note") if "top_k" in text]
    assert len(notes) == 1, f"one notice that top_k was dropped, in one side: {notes}"


def test_a_server_failure_shows_its_status_and_reason_in_its_side_only(app: AppPage) -> None:
    app.select_model("right", MISSING_ID)
    app.send("还在吗")
    app.wait_finished()
    errors = app.texts("right", "hh-error")
    assert errors and "the model server failed (HTTP 500): Internal Server Error" in errors[0]
    assert "tok/s" in app.stats("left") and not app.texts("left", "hh-error")
