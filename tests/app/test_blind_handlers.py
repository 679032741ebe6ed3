"""Blind mode's handlers on a built page, called as Gradio calls them (a gr.Request per session, no server): what
the server keeps decides, not what the page (or a script) sends. Export refuses while the session is blind, a Send
runs the models kept for the sides, a page whose blind mode the server forgot gets a clear message and no
placeholder in its reveal, a toast names no model, and ticking Blind empties both stats lines.

The same through a served page: tests/app/test_app_api.py (the API) and tests/app/test_blind_browser.py.

    .venv/bin/python -m pytest tests/app/test_blind_handlers.py
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from gradio.state_holder import SessionState

from app.config import AppArgs
from app.conversation import new_exchange
from app.hidden_names import HIDDEN
from app.render import stats_line
from app.ui import BLIND_EXPORT_REFUSED, build_demo
from tests.app.fake_engine import FakeEngine

SAMPLING = ["persona", True, 0.6, 0.95, 20, 16, 0]  # system prompt, persona for base, temperature ... seed
NAMES = re.compile("fake-base|huanhuan")


@pytest.fixture
def demo(fake_engine: FakeEngine, tmp_path: Path) -> gr.Blocks:
    settings = AppArgs(votes_dir=str(tmp_path / "votes"), export_dir=str(tmp_path / "exports"))
    return build_demo(fake_engine, settings)


def event(demo: gr.Blocks, api_name: str) -> Any:
    return next(fn for fn in demo.fns.values() if fn.api_name == api_name)


def call(demo: gr.Blocks, api_name: str, session: str, *inputs: Any) -> list[Any]:
    """What the event's handler returns, called by Gradio for `session` (which injects its gr.Request)."""
    request = gr.Request(session_hash=session)
    return asyncio.run(demo.call_function(event(demo, api_name), list(inputs), requests=request))["prediction"]


def send(demo: gr.Blocks, session: str, left: str, right: str, message: str = "hi") -> list[list[Any]]:
    """Every update of a Send (a generator: called directly, with the request Gradio would pass)."""
    handler = event(demo, "send").fn
    return list(handler(gr.Request(session_hash=session), [], message, left, right, *SAMPLING, 0))


def tick(demo: gr.Blocks, session: str, on: bool, left: str = "fake-base", right: str = "huanhuan") -> list[Any]:
    return call(demo, "blind_mode", session, on, [], left, right, 0)


def test_export_refuses_while_the_session_is_blind_whatever_the_page_sends(demo: gr.Blocks) -> None:
    exchanges = [new_exchange("hi", {"left": "fake-base", "right": "huanhuan"}, now=0.0)]
    tick(demo, "s", True)
    with pytest.raises(gr.Error, match=re.escape(BLIND_EXPORT_REFUSED)):  # the page (or a script) says "not blind"
        call(demo, "export", "s", exchanges, False, "", HIDDEN, HIDDEN, *SAMPLING)
    files = call(demo, "export", "t", exchanges, False, "", "fake-base", "huanhuan", *SAMPLING)  # not blind
    assert len(files) == 2


def test_a_send_while_blind_runs_the_kept_models_whatever_names_the_page_sends(
    demo: gr.Blocks, fake_engine: FakeEngine
) -> None:
    tick(demo, "s", True)  # fake-base and huanhuan, in an order the page is not told
    *_, last = send(demo, "s", "huanhuan", "huanhuan")  # sent before the tick's reply came back, or by a script
    assert sorted(request.model for request in fake_engine.requests) == ["fake-base", "huanhuan"]
    assert not NAMES.search(str(last[:-1])), "the stats lines say A and B"


def test_a_page_whose_blind_mode_the_server_forgot_gets_a_clear_message_and_no_placeholder_in_the_reveal(
    demo: gr.Blocks, fake_engine: FakeEngine
) -> None:
    tick(demo, "s", True)
    call(demo, "forget", "s")  # the server lost the page (a missed heartbeat) while it still shows blind mode
    with pytest.raises(gr.Error, match="Blind mode was reset on the server"):
        send(demo, "s", HIDDEN, HIDDEN)
    assert fake_engine.requests == []
    voted = call(demo, "vote_left", "s", True, [], 0, "persona")
    assert "Blind mode was reset on the server" in voted[-2], "the vote says what to do"
    unticked = tick(demo, "s", False, HIDDEN, HIDDEN)
    assert HIDDEN not in str(unticked), unticked
    assert [unticked[i]["value"] for i in (1, 2)] == ["fake-base", "huanhuan"], "the pickers' defaults"
    assert "reset on the server" in unticked[-2] and "nothing to reveal" in unticked[-2], "says why nothing is named"


def test_ticking_blind_from_pickers_still_holding_the_placeholder_hides_their_defaults(
    demo: gr.Blocks, fake_engine: FakeEngine
) -> None:
    tick(demo, "s", True)
    call(demo, "forget", "s")
    tick(demo, "s", True, HIDDEN, HIDDEN)  # the box ticked again before the pickers were revealed (a script)
    send(demo, "s", HIDDEN, HIDDEN)
    assert sorted(request.model for request in fake_engine.requests) == ["fake-base", "huanhuan"]
    assert "`‹hidden›`" not in tick(demo, "s", False, HIDDEN, HIDDEN)[-2]


def test_a_toast_while_blind_names_no_model(demo: gr.Blocks) -> None:
    tick(demo, "s", True, "huanhuan", "../../x")  # a side kept with a name no engine takes: the turn is refused
    with pytest.raises(gr.Error) as refused:
        send(demo, "s", HIDDEN, HIDDEN)
    message = refused.value.message  # "unknown model '../../x': choose one of fake-base, huanhuan, base", hidden
    assert "unknown model" in message and not NAMES.search(message) and "../../x" not in message, message


def test_ticking_blind_empties_both_stats_lines(demo: gr.Blocks) -> None:
    """Gradio pops "value" from an update it sends: one update object shared by both lines reached the second
    without its value, which kept the last turn's stats (and names) on the page."""
    blind_mode = event(demo, "blind_mode")
    outputs = asyncio.run(demo.postprocess_data(blind_mode, tick(demo, "s", True), SessionState(demo)))
    stats = [outputs[blind_mode.outputs.index(block)] for block in blind_mode.outputs if block.elem_id in
             ("stats-left", "stats-right")]  # fmt: skip
    assert [update.get("value") for update in stats] == [stats_line(None)] * 2


def test_unticking_after_a_hidden_model_was_unloaded_shows_the_pickers_fallback_and_names_the_model(
    demo: gr.Blocks, fake_engine: FakeEngine
) -> None:
    tick(demo, "s", True)
    fake_engine.unload_adapter("huanhuan")  # behind the page's back (another page's Adapters panel)
    unticked = tick(demo, "s", False, HIDDEN, HIDDEN)
    assert [unticked[i]["value"] for i in (1, 2)] == ["fake-base", "fake-base"], "no longer served: the default"
    assert "`huanhuan`" in unticked[-2], "the reveal still names the model the side ran"


def test_stop_and_undo_while_blind_leave_stats_lines_that_name_no_model(demo: gr.Blocks) -> None:
    tick(demo, "s", True)
    *_, first = send(demo, "s", HIDDEN, HIDDEN)
    handler = event(demo, "send").fn  # a second exchange, so that Undo leaves one with its stats lines
    *_, last = handler(gr.Request(session_hash="s"), first[-1], "again", HIDDEN, HIDDEN, *SAMPLING, 0)
    exchanges = last[-1]  # the state the turns left
    for api_name in ("stop", "undo"):
        at_rest = call(demo, api_name, "s", exchanges, "", 0)
        stats = [value for value in at_rest if isinstance(value, str) and " · " in value]
        assert [line.split(" · ")[0] for line in stats] == ["A", "B"], f"{api_name}: {stats}"
        assert not NAMES.search(str(stats)), f"{api_name} named a model: {stats}"  # the state stays on the server
