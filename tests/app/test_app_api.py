"""The page's API driven directly (gradio_client), as a script could bypass the widgets: bad values are refused
with a clear message, history stays unchanged, and nothing reaches the engine. Served on the fake engine.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import AppArgs
from app.hidden_names import HIDDEN
from app.ui import build_demo
from tests.app.fake_engine import FakeEngine
from tests.support.paths import REPO_ROOT
from tests.support.served_page import serve_demo
from tests.support.serving_test_helpers import write_adapter

pytestmark = pytest.mark.slow
GOOD = {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "max_tokens": 16, "seed": 0}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> FakeEngine:
    adapter = tmp_path_factory.mktemp("adapters") / "huanhuan"
    adapter.mkdir()
    return FakeEngine(adapters={"huanhuan": adapter}, adapters_dir=adapter.parent)


@pytest.fixture(scope="module")
def votes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("votes")


@pytest.fixture(scope="module")
def url(engine: FakeEngine, votes_dir: Path) -> Iterator[str]:
    settings = AppArgs(max_message_chars=1000, max_new_tokens_limit=256, votes_dir=str(votes_dir))
    yield from serve_demo(build_demo(engine, settings))


@pytest.fixture
def client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


def send(client, message: str = "hi", left: str = "fake-base", right: str = "huanhuan", **sampling):
    values = {**GOOD, **sampling}
    return client.predict(
        message, left, right, "persona", True, values["temperature"], values["top_p"], values["top_k"],
        values["max_tokens"], values["seed"], api_name="/send",
    )  # fmt: skip


def test_a_normal_turn_through_the_api(client, engine: FakeEngine) -> None:
    before = len(engine.requests)
    job = client.submit(
        "hello", "fake-base", "huanhuan", "persona", True, GOOD["temperature"], GOOD["top_p"], GOOD["top_k"],
        GOOD["max_tokens"], GOOD["seed"], api_name="/send",
    )  # fmt: skip
    box, left_chat, _right_chat, left_stats, _right_stats = job.result()
    assert len(engine.requests) == before + 2
    assert "Hello there!" in left_chat[-1]["content"][0]["text"] and "fake-base" in left_stats
    boxes = [outputs[0] for outputs in job.outputs()]
    assert boxes[0] == "", "the turn's first update empties the message box"
    assert all(later == {"__type__": "update"} for later in boxes[1:]) and box == boxes[-1], (
        "later updates leave the box to what the person types meanwhile"
    )


def test_each_streamed_update_carries_only_the_turns_exchange(client) -> None:
    send(client, "first")
    job = client.submit(
        "second", "fake-base", "huanhuan", "persona", True, GOOD["temperature"], GOOD["top_p"], GOOD["top_k"],
        GOOD["max_tokens"], GOOD["seed"], api_name="/send",
    )  # fmt: skip
    job.result()
    updates = job.outputs()
    assert len(updates) >= 2
    for _box, left_chat, right_chat, *_stats in updates:
        for chat in (left_chat, right_chat):
            users = [m["content"][0]["text"] for m in chat if m["role"] == "user"]
            assert users == ["second"], chat  # the earlier exchange stays in the page's history, unsent


def stored_votes(votes_dir: Path) -> list[str]:
    return [line for path in sorted(votes_dir.glob("**/*.jsonl")) for line in path.read_text("utf-8").splitlines()]


def test_a_vote_through_the_api_with_blind_mode_off_is_refused_and_not_stored(client, votes_dir: Path) -> None:
    before = stored_votes(votes_dir)
    send(client, "hello")
    outputs = client.predict(False, 0, "persona", api_name="/vote_left")
    assert "Blind mode is off" in str(outputs)
    assert stored_votes(votes_dir) == before


def test_a_blind_turn_runs_the_kept_models_whatever_the_page_sends_and_the_vote_reveals_them(
    client, votes_dir: Path
) -> None:
    before = stored_votes(votes_dir)
    client.predict(True, "fake-base", "gone-model", api_name="/blind_mode")  # one hidden side's model is not served
    _, left_chat, right_chat, _, _ = send(client, "hello", left="huanhuan", right="huanhuan")  # names: not blind
    texts = {side: chat[-1]["content"][0]["text"] for side, chat in (("left", left_chat), ("right", right_chat))}
    gone = next(side for side, text in texts.items() if "is not served now" in text)  # the kept model ran there
    assert "gone-model" not in texts[gone] and HIDDEN in texts[gone], texts
    ran = {side: "gone-model" if side == gone else "fake-base" for side in texts}
    outputs = client.predict(True, 0, "persona", api_name="/vote_left")
    assert f"A was `{ran['left']}`, B was `{ran['right']}`" in str(outputs)
    added = [json.loads(line) for line in stored_votes(votes_dir)[len(before) :]]
    stored = [(vote["vote"], vote["left"]["model"], vote["right"]["model"]) for vote in added]
    assert stored == [("left", ran["left"], ran["right"])]
    again = client.predict(True, 0, "persona", api_name="/vote_right")  # a script claiming blind mode still on
    assert "Blind mode was reset on the server" in str(again) and len(stored_votes(votes_dir)) == len(before) + 1


def test_a_vote_that_cannot_be_saved_says_so_and_can_be_given_again(engine: FakeEngine, tmp_path: Path) -> None:
    from gradio_client import Client

    blocked = tmp_path / "votes"
    blocked.write_text("a file where the votes folder should be")
    settings = AppArgs(max_new_tokens_limit=256, votes_dir=str(blocked))
    served = serve_demo(build_demo(engine, settings))
    try:
        client = Client(next(served), verbose=False)
        client.predict(True, "fake-base", "huanhuan", api_name="/blind_mode")
        send(client, "hello", left="huanhuan", right="fake-base")
        refused = client.predict(True, 0, "persona", api_name="/vote_left")
        assert "The vote could not be saved" in str(refused) and "A was" not in str(refused)
        blocked.unlink()  # the folder can be made now: the same exchange takes the vote
        saved = client.predict(True, 0, "persona", api_name="/vote_left")
        assert "Vote saved" in str(saved) and len((blocked / "votes.jsonl").read_text().splitlines()) == 1
    finally:
        next(served, None)


def test_a_reload_while_blind_moves_the_hidden_side_on_the_server_and_the_page_learns_no_name(tmp_path: Path) -> None:
    from gradio_client import Client

    write_adapter(tmp_path / "adapters" / "huanhuan")
    engine = FakeEngine(adapters_dir=tmp_path / "adapters")
    engine.load_adapter("huanhuan")
    served = serve_demo(build_demo(engine, AppArgs(max_new_tokens_limit=256, votes_dir=str(tmp_path / "votes"))))
    try:
        client = Client(next(served), verbose=False)
        toggled = client.predict(True, "fake-base", "huanhuan", api_name="/blind_mode")
        reloaded = client.predict("huanhuan", HIDDEN, HIDDEN, api_name="/reload_adapter")  # what a blind page sends
        assert "huanhuan@2" in reloaded[2] and ["value" in picker for picker in reloaded[3:]] == [False, False]
        *_, left_stats, right_stats = send(client, "hello", left=HIDDEN, right=HIDDEN)
        assert left_stats.startswith("A · ") and right_stats.startswith("B · ") and "tok/s" in right_stats
        assert not re.search("huanhuan|fake-base", str([toggled, left_stats, right_stats]))  # the choices list both
        assert sorted(request.model for request in engine.requests) == ["fake-base", "huanhuan@2"]
        revealed = client.predict(True, 0, "persona", api_name="/vote_tie")
        pickers = {side: revealed[i]["value"] for i, side in ((1, "left"), (2, "right"))}
        assert sorted(pickers.values()) == ["fake-base", "huanhuan@2"], "the vote puts the models back"
        assert f"A was `{pickers['left']}`, B was `{pickers['right']}`" in revealed[-1]
        assert revealed[7]["value"].startswith(f"`{pickers['left']}` · "), "the stats lines name them again"
        client.predict(True, pickers["left"], pickers["right"], api_name="/blind_mode")
        unticked = client.predict(False, HIDDEN, HIDDEN, api_name="/blind_mode")  # off again, without a vote
        shown = [unticked[i]["value"] for i in (1, 2)]
        assert sorted(shown) == ["fake-base", "huanhuan@2"] and unticked[1]["visible"] and "(no vote)" in unticked[-1]
    finally:
        next(served, None)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"right": "../../x"}, "unknown model"),
        ({"left": "/etc/../etc/passwd"}, "unknown model"),
        ({"max_tokens": 0}, "less than minimum value 1"),  # Gradio's own slider bounds refuse it first
        ({"max_tokens": -3}, "less than minimum value 1"),
        ({"message": "x" * 5000}, "the limit is 1,000"),
    ],
)
def test_bad_values_are_refused_without_an_upstream_call(client, engine: FakeEngine, overrides, expected) -> None:
    from gradio_client.exceptions import AppError

    before = len(engine.requests)
    message = overrides.pop("message", "hello")
    with pytest.raises(AppError, match=None) as caught:
        send(client, message, **overrides)
    assert expected in str(caught.value)
    assert len(engine.requests) == before


def test_a_path_sent_as_a_model_is_never_sent_to_the_engine(client, engine: FakeEngine) -> None:
    before = len(engine.requests)
    _, left_chat, _, _, _ = send(client, "hello", left="/etc/passwd")  # well formed as a server id, not offered
    assert "'/etc/passwd' is not served now" in left_chat[-1]["content"][0]["text"]
    assert [r.model for r in engine.requests[before:]] == ["huanhuan"]


def call_raw(url: str, api_name: str, body: str) -> str:
    """POST a raw JSON body (which may hold NaN, as a script could send) and read the SSE result stream."""
    request = urllib.request.Request(url + f"gradio_api/call/{api_name}", data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(url + f"gradio_api/call/{api_name}/{event_id}", timeout=30) as response:
        return response.read().decode()


def test_nan_temperature_sent_raw_is_refused(url: str, engine: FakeEngine) -> None:
    before = len(engine.requests)
    body = '{"data": ["hello", "fake-base", "huanhuan", "p", true, NaN, 0.95, 20, 16, 0, 0]}'  # the last: click time
    stream = call_raw(url, "send", body)
    assert "event: error" in stream and "temperature must be a finite number" in stream
    assert len(engine.requests) == before


def test_empty_and_whitespace_messages_do_nothing(client, engine: FakeEngine) -> None:
    before = len(engine.requests)
    for message in ("", "   \n\t"):
        send(client, message)
    assert len(engine.requests) == before


def test_loading_a_path_typed_by_a_user_is_refused(client, engine: FakeEngine) -> None:
    for typed in ("../../etc", "/tmp/evil-adapter"):
        _table, _choice, status, *_pickers = client.predict(typed, "fake-base", "huanhuan", api_name="/load_adapter")
        assert "is not a valid adapter name" in status
    assert set(engine.loaded_adapters) == {"huanhuan"}


def test_files_outside_the_app_are_not_served(url: str) -> None:
    for path in ("gradio_api/file=/etc/passwd", "file=/etc/passwd", "gradio_api/file=../../../../etc/passwd"):
        try:
            with urllib.request.urlopen(url + path, timeout=10) as response:
                body = response.read()
            assert b"root:" not in body
        except urllib.error.HTTPError as error:
            assert error.code in (403, 404)


def test_share_without_auth_refuses_to_start(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "app", "--engine", "openai", "--base-url", "http://127.0.0.1:9/v1", "--share"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin"},
                            cwd=REPO_ROOT)  # fmt: skip
    assert result.returncode != 0 and "--share needs auth" in result.stderr
