"""Unit tests of app.turns + app.merge_sides with the fake engine: concurrency, errors per side, Stop, history."""

from __future__ import annotations

import re

import pytest

from app.config import AppArgs
from app.conversation import FINISHED
from app.hidden_names import HIDDEN
from app.turns import BLIND_RESET, ChatTurns, TurnInputs, undo
from serving.protocol import BadRequestError, SamplingParams
from tests.app.fake_engine import FakeEngine, Script


def inputs(message: str = "你好", left: str = "fake-base", right: str = "huanhuan", **kw) -> TurnInputs:
    return TurnInputs(message=message, models={"left": left, "right": right}, params=SamplingParams(max_tokens=16),
                      system_prompt=kw.pop("system_prompt", "persona"), **kw)  # fmt: skip


def run(turns: ChatTurns, step, *args) -> list:
    return list(getattr(turns, step)(*args))


def test_both_sides_stream_concurrently_and_the_fast_side_is_not_held_back(tmp_path) -> None:
    slow = Script(thinking=["s"] * 10, answer=["S"] * 10, delay_s=0.05)  # ~1 s
    fast = Script(thinking=["f"], answer=["F"] * 3, delay_s=0.01)  # ~0.04 s
    engine = FakeEngine({"fake-base": slow, "huanhuan": fast}, adapters={"huanhuan": tmp_path})
    turns = ChatTurns(engine, AppArgs())
    views: list = []
    slow_then = None  # the slow side as it was when the fast side finished
    for view in turns.send(inputs(), [], "s"):
        views.append(view)
        replies = view.exchanges[-1].replies
        if slow_then is None and replies["right"].status == "done":
            slow_then = (replies["left"].status, replies["left"].pieces)
    assert slow_then is not None, "the fast side finished"
    assert slow_then[0] not in FINISHED and slow_then[1] < 20, f"the slow side was not done yet: {slow_then}"
    assert engine.open_streams_calls == 1  # one batched open for both sides
    final = views[-1].exchanges[-1].replies
    assert final["left"].answer == "S" * 10 and final["right"].answer == "FFF" and not views[-1].running


def test_an_error_on_one_side_stays_there_while_the_other_finishes(tmp_path) -> None:
    broken = Script(answer=["x"] * 5, fail_after=2, fail_message="adapter 'huanhuan' is gone")
    engine = FakeEngine({"huanhuan": broken}, adapters={"huanhuan": tmp_path})
    last = run(ChatTurns(engine, AppArgs()), "send", inputs(), [], "s")[-1]
    left, right = last.exchanges[-1].replies["left"], last.exchanges[-1].replies["right"]
    assert left.status == "done" and left.answer == "Hello there!" and left.error is None
    assert (
        right.status == "error" and "adapter 'huanhuan' is gone" in right.error and right.thinking == "let me think "
    )


def test_adapter_unloaded_behind_the_apps_back_fails_only_its_side(fake_engine: FakeEngine) -> None:
    listed = fake_engine.models()
    fake_engine.unload_adapter("huanhuan")  # gone from the engine, but the app's pickers still show it
    fake_engine.models = lambda: listed
    last = run(ChatTurns(fake_engine, AppArgs()), "send", inputs(), [], "s")[-1]
    left, right = last.exchanges[-1].replies["left"], last.exchanges[-1].replies["right"]
    assert left.status == "done" and left.answer == "Hello there!"
    assert right.status == "error" and "does not exist" in right.error


def test_a_model_no_longer_served_fails_its_side_without_an_upstream_call(fake_engine: FakeEngine) -> None:
    fake_engine.unload_adapter("huanhuan")
    last = run(ChatTurns(fake_engine, AppArgs()), "send", inputs(), [], "s")[-1]
    left, right = last.exchanges[-1].replies["left"], last.exchanges[-1].replies["right"]
    assert left.status == "done" and right.status == "error" and "'huanhuan' is not served now" in right.error
    assert [r.model for r in fake_engine.requests] == ["fake-base"]


def test_a_blind_session_gets_its_sides_errors_without_model_names(tmp_path) -> None:
    broken = Script(answer=["x"] * 5, fail_after=2, fail_message="adapter 'huanhuan' of fake-base is gone")
    engine = FakeEngine({"huanhuan": broken}, adapters={"huanhuan": tmp_path})
    turns = ChatTurns(engine, AppArgs())
    turns.start_blind("s", {"left": "fake-base", "right": "huanhuan"})
    streamed = run(turns, "send", inputs(left=HIDDEN, right=HIDDEN), [], "s")[-1].exchanges[-1].replies["right"]
    turns.start_blind("s", {"left": "fake-base", "right": "gone"})
    unserved = run(turns, "send", inputs(left=HIDDEN, right=HIDDEN), [], "s")[-1].exchanges[-1].replies["right"]
    for reply in (streamed, unserved):
        assert reply.status == "error" and "‹hidden›" in reply.error, reply.error
        assert not re.search(r"huanhuan|fake-base|'gone'", reply.error), reply.error
    turns.end_blind("s")  # voted or turned off: errors name the models again
    unserved = run(turns, "send", inputs(right="gone"), [], "s")[-1].exchanges[-1].replies["right"]
    assert "'gone' is not served now" in unserved.error
    other_session = run(turns, "send", inputs(right="gone"), [], "t")[-1].exchanges[-1].replies["right"]
    assert "'gone' is not served now" in other_session.error


@pytest.mark.parametrize("typed", ["/etc/passwd", "org/not-offered", "qwen3:4b"])
def test_a_typed_id_the_engine_does_not_offer_is_never_sent(fake_engine: FakeEngine, typed: str) -> None:
    last = run(ChatTurns(fake_engine, AppArgs()), "send", inputs(right=typed), [], "s")[-1]
    right = last.exchanges[-1].replies["right"]
    assert right.status == "error" and f"'{typed}' is not served now" in right.error
    assert [r.model for r in fake_engine.requests] == ["fake-base"]


def test_bad_model_name_is_refused_before_any_upstream_call(fake_engine: FakeEngine) -> None:
    turns = ChatTurns(fake_engine, AppArgs())
    with pytest.raises(BadRequestError, match=re.escape("unknown model '../../x'")):
        run(turns, "send", inputs(right="../../x"), [], "s")
    assert fake_engine.requests == []


def test_empty_message_does_nothing(fake_engine: FakeEngine) -> None:
    assert run(ChatTurns(fake_engine, AppArgs()), "send", inputs(message="   "), [], "s") == []
    assert fake_engine.requests == []


def test_history_and_persona_sent_to_each_side(fake_engine: FakeEngine) -> None:
    turns = ChatTurns(fake_engine, AppArgs())
    first = run(turns, "send", inputs(message="q1", persona_for_base=False), [], "s")[-1].exchanges
    run(turns, "send", inputs(message="q2", persona_for_base=False), first, "s")
    by_model = {r.model: r.messages for r in fake_engine.requests[2:]}
    assert by_model["fake-base"] == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "Hello there!"},
        {"role": "user", "content": "q2"},
    ]  # no persona for the base, no thinking in history
    assert by_model["huanhuan"][0] == {"role": "system", "content": "persona"}
    assert by_model["huanhuan"][2] == {"role": "assistant", "content": "皇上万福"}
    assert all(r.params.seed == 0 for r in fake_engine.requests)  # same seed on both sides


def test_stop_closes_both_streams_and_keeps_partial_text(tmp_path) -> None:
    slow = Script(thinking=["t"] * 200, answer=["a"], delay_s=0.02)
    engine = FakeEngine({"fake-base": slow, "huanhuan": slow}, adapters={"huanhuan": tmp_path})
    turns = ChatTurns(engine, AppArgs())
    views, stopped = [], False
    for view in turns.send(inputs(), [], "session-1"):
        views.append(view)
        if not stopped and view.exchanges[-1].replies["left"].pieces >= 3:
            stopped = turns.stop("session-1")  # what the Stop button's handler does
    assert stopped
    last = views[-1].exchanges[-1].replies
    assert all(stream.closed.is_set() for stream in engine.streams)
    assert last["left"].status == "stopped" and last["right"].status == "stopped"
    assert 3 <= last["left"].pieces < 200 and last["left"].thinking.startswith("ttt")
    assert not turns.stop("session-1")  # nothing left running


def test_stop_right_after_the_first_view_sends_nothing(fake_engine: FakeEngine) -> None:
    turns = ChatTurns(fake_engine, AppArgs())
    page = turns.send(inputs(), [], "s")
    assert next(page).running  # the page shows the user's message, the turn has not sent anything yet
    assert turns.stop("s"), "Stop found no turn to stop"
    last = list(page)[-1].exchanges[-1].replies
    assert fake_engine.requests == [] and {r.status for r in last.values()} == {"stopped"}


def test_a_turn_clicked_before_a_stop_never_starts(fake_engine: FakeEngine) -> None:
    turns = ChatTurns(fake_engine, AppArgs())
    assert not turns.stop("s", clicked_at_ms=2_000.0)  # nothing running: the click time is kept for the session
    assert run(turns, "send", inputs(clicked_at_ms=1_999.0), [], "s") == []  # it waited in the queue
    assert run(turns, "regenerate", inputs(clicked_at_ms=1_500.0), [], "s") == []
    assert fake_engine.requests == []
    assert run(turns, "send", inputs(clicked_at_ms=1_999.0), [], "other session")[-1].running is False
    assert run(turns, "send", inputs(clicked_at_ms=2_001.0), [], "s")[-1].exchanges[-1].replies["left"].answer
    assert run(turns, "send", inputs(), [], "s")[-1].exchanges  # no click time (an API call): it runs
    turns.stop("s", clicked_at_ms=1_000.0)  # an older stop arriving late moves nothing back
    assert run(turns, "send", inputs(clicked_at_ms=1_999.0), [], "s") == []
    assert len(fake_engine.requests) == 6


def test_a_closed_pages_session_is_forgotten(fake_engine: FakeEngine) -> None:
    turns = ChatTurns(fake_engine, AppArgs())
    turns.start_blind("s", {"left": "fake-base", "right": "huanhuan"})
    turns.stop("s", clicked_at_ms=2_000.0)
    turns.forget("s")  # the page closed (demo.unload); a new page may get the same session id
    last = run(turns, "send", inputs(right="gone", clicked_at_ms=1_000.0), [], "s")[-1]
    assert "'gone' is not served now" in last.exchanges[-1].replies["right"].error  # not blind, not stopped


def test_regenerate_replaces_the_last_replies_and_undo_gives_back_the_message(fake_engine: FakeEngine) -> None:
    turns = ChatTurns(fake_engine, AppArgs())
    first = run(turns, "send", inputs(message="q1"), [], "s")[-1].exchanges
    second = run(turns, "regenerate", inputs(message="draft"), first, "s")[-1]
    assert len(second.exchanges) == 1 and second.exchanges[0].user == "q1" and second.message_box == "draft"
    assert second.exchanges[0] is not first[0] and len(fake_engine.requests) == 4
    remaining, box = undo(second.exchanges, "")
    assert remaining == [] and box == "q1"
    assert undo(second.exchanges, "new text")[1] == "new text"


def test_clear_during_a_turn_discards_it_without_painting_it_back(tmp_path) -> None:
    slow = Script(thinking=["t"] * 200, answer=["a"], delay_s=0.02)
    engine = FakeEngine({"fake-base": slow, "huanhuan": slow}, adapters={"huanhuan": tmp_path})
    turns = ChatTurns(engine, AppArgs())
    views = []
    for view in turns.send(inputs(), [], "s"):
        views.append(view)
        if len(views) == 3:
            assert turns.stop("s", discard=True)  # what Clear and Undo do
    assert len(views) <= 4 and all(view.running for view in views)  # no final view after the discard
    assert all(stream.closed.is_set() for stream in engine.streams)


def test_fast_deltas_reach_the_page_coalesced_and_each_sides_first_text_goes_out_alone(tmp_path) -> None:
    """60 pieces a side, ~1 ms apart: without coalescing the page would get about one update per piece."""
    script = Script(thinking=["t"] * 30, answer=["a"] * 30, delay_s=0.001)
    engine = FakeEngine({"fake-base": script, "huanhuan": script}, adapters={"huanhuan": tmp_path})
    pieces = []  # per page update: how many pieces each side shows then
    for view in ChatTurns(engine, AppArgs()).send(inputs(), [], "s"):
        pieces.append({side: reply.pieces for side, reply in view.exchanges[-1].replies.items()})
    assert pieces[-1] == {"left": 60, "right": 60}
    assert len(pieces) <= 30, f"{len(pieces)} page updates for 120 pieces"
    for side in ("left", "right"):
        first = next(shown[side] for shown in pieces if shown[side])
        assert first <= 5, f"the {side} side's first text was held until {first} pieces had come"


def test_a_regenerate_during_a_running_turn_ends_it_without_painting_it_again(tmp_path) -> None:
    slow = Script(thinking=["t"] * 200, answer=["a"], delay_s=0.02)
    engine = FakeEngine({"fake-base": slow, "huanhuan": slow}, adapters={"huanhuan": tmp_path})
    turns = ChatTurns(engine, AppArgs())
    sent = turns.send(inputs(message="q1"), [], "s")
    first = [next(sent), next(sent)]  # streaming: the page holds the exchange mid-stream
    regenerated = turns.regenerate(inputs(message="draft"), first[-1].exchanges, "s")
    assert next(regenerated).running and turns.is_running("s")
    assert turns.history_under_running_turn("s") == [], "what the cut turn's rest step may draw: not its exchange"
    assert list(sent) == [], "the cut turn painted its stopped exchange over the regenerated one"
    assert all(stream.closed.is_set() for stream in engine.streams[:2])
    turns.stop("s")
    last = list(regenerated)[-1]
    assert [exchange.user for exchange in last.exchanges] == ["q1"] and not turns.is_running("s")
    assert turns.history_under_running_turn("s") is None


def test_a_blind_turn_records_the_weights_that_answered_and_a_vote_ends_blind_mode_once(tmp_path) -> None:
    from common.file_hash import file_sha256
    from serving.adapters import WEIGHTS_FILE
    from tests.support.serving_test_helpers import write_adapter

    folder = write_adapter(tmp_path / "adapters" / "huanhuan")
    engine = FakeEngine(adapters_dir=tmp_path / "adapters")
    engine.load_adapter("huanhuan")
    turns = ChatTurns(engine, AppArgs())
    seen = run(turns, "send", inputs(), [], "s")[-1].exchanges[-1].replies
    assert seen["right"].weights_sha256 == "", "not blind: no engine call is spent on it"
    turns.start_blind("s", {"left": "fake-base", "right": "huanhuan"})
    blind = run(turns, "send", inputs(left=HIDDEN, right=HIDDEN), [], "s")[-1].exchanges[-1].replies
    assert blind["right"].weights_sha256 == file_sha256(folder / WEIGHTS_FILE) and blind["left"].weights_sha256 == ""
    assert turns.end_blind("s") is not None and turns.end_blind("s") is None, "a second vote is refused"


def test_a_blind_page_sends_placeholders_and_each_side_runs_the_model_the_server_keeps_for_it(tmp_path) -> None:
    engine = FakeEngine({"fake-base": Script(answer=["base"]), "huanhuan": Script(answer=["tuned"])},
                        adapters={"huanhuan": tmp_path})  # fmt: skip
    turns = ChatTurns(engine, AppArgs())
    turns.start_blind("s", {"left": "huanhuan", "right": "fake-base"})  # the coin swapped the sides
    replies = run(turns, "send", inputs(left=HIDDEN, right=HIDDEN), [], "s")[-1].exchanges[-1].replies
    assert (replies["left"].model, replies["left"].answer) == ("huanhuan", "tuned")
    assert (replies["right"].model, replies["right"].answer) == ("fake-base", "base")
    assert turns.page_text("s", "adapter huanhuan on fake-base failed") == f"adapter {HIDDEN} on {HIDDEN} failed"
    assert turns.move_blind("s", {"left": "huanhuan@2"})  # reloaded under a new name
    assert turns.end_blind("s") == {"left": "huanhuan@2", "right": "fake-base"}  # the vote reveals them
    assert not turns.move_blind("s", {"left": "other"})  # too late: blind mode is over, nothing is kept
    assert turns.blind_models("s") == {} and turns.page_text("s", "huanhuan") == "huanhuan"
    with pytest.raises(BadRequestError, match=re.escape(BLIND_RESET)):  # a stale blind page: nothing is sent
        run(turns, "send", inputs(left=HIDDEN, right=HIDDEN), [], "s")
    assert len(engine.requests) == 2
