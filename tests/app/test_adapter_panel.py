"""The Adapters panel sends names only, one engine call per action, and a side follows a reload's fresh name (while
blind, on the server: a picker sent as HIDDEN gets the new choices, never a value, even when a vote races the action);
the app package imports only the engine protocol and the factory from serving.

    .venv/bin/python -m pytest tests/app/test_adapter_panel.py
"""

from __future__ import annotations

import ast
from functools import partial
from pathlib import Path

from app.adapter_panel import TABLE_HEADERS, apply_action, follow, moved_pickers, panel_values
from app.config import AppArgs
from app.hidden_names import HIDDEN
from app.turns import ChatTurns
from tests.app.fake_engine import FakeEngine

APP_DIR = Path(__file__).resolve().parents[2] / "app"
SERVING_ALLOWED = {"serving.protocol", "serving.factory"}


def serving_imports(path: Path) -> set[str]:
    """Every `serving...` module a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names if node.module == "serving"]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name for name in names if name == "serving" or name.startswith("serving.")}
    return found


def test_the_app_imports_only_the_protocol_and_the_factory_from_serving() -> None:
    used = {path.name: serving_imports(path) - SERVING_ALLOWED for path in sorted(APP_DIR.glob("*.py"))}
    assert {name: modules for name, modules in used.items() if modules} == {}
    assert serving_imports(APP_DIR / "adapter_panel.py") == {"serving.protocol"}  # the check sees imports


def test_each_action_is_one_engine_call_with_the_name_only(fake_engine: FakeEngine) -> None:
    for action in ("reload", "unload", "load"):
        fake_engine.adapter_calls.clear()
        message, _served = apply_action(fake_engine, action, "huanhuan")
        assert fake_engine.adapter_calls == [(action, "huanhuan")], message


def test_a_reload_serves_a_fresh_name_and_the_sides_showing_the_old_one_follow(fake_engine: FakeEngine) -> None:
    message, served = apply_action(fake_engine, "reload", "huanhuan")
    assert served == "huanhuan@2" and "huanhuan@2" in message
    assert set(fake_engine.loaded_adapters) == {"huanhuan@2"}
    assert follow("huanhuan", "huanhuan", served) == "huanhuan@2"
    assert follow("fake-base", "huanhuan", served) == "fake-base"
    rows, _choice, _status, left, right = panel_values(fake_engine, AppArgs(), "huanhuan", message, "fake-base",
                                                       "huanhuan@2")  # fmt: skip
    assert (left["value"], right["value"]) == ("fake-base", "huanhuan@2")
    served_as = {row[0]: row[TABLE_HEADERS.index("served as")] for row in rows}
    assert served_as["huanhuan"] == "huanhuan@2"


def test_a_refusal_from_the_serving_side_is_the_status_line(fake_engine: FakeEngine) -> None:
    message, served = apply_action(fake_engine, "load", "../../etc")
    assert served is None and message.startswith("⚠") and "not a valid adapter name" in message
    message, _ = apply_action(fake_engine, "unload", "never-loaded")
    assert "is not loaded" in message


def offered(picker: dict) -> list[str]:
    return [value for _label, value in picker["choices"]]


def test_a_picker_sent_as_hidden_gets_the_new_choices_and_keeps_its_value(fake_engine: FakeEngine) -> None:
    """A vote came first: the session is no longer blind, and the page's pickers show the revealed models."""
    turns = ChatTurns(fake_engine, AppArgs())
    _, served = apply_action(fake_engine, "reload", "huanhuan")
    move = partial(follow, name="huanhuan", served=served)
    pickers = moved_pickers(turns, AppArgs(), "s", (HIDDEN, HIDDEN), move)
    assert ["value" in picker for picker in pickers] == [False, False], pickers
    assert "huanhuan@2" in offered(pickers[0]) and offered(pickers[0]) == offered(pickers[1])


def test_a_vote_between_reading_and_moving_the_hidden_models_reveals_no_placeholder(fake_engine: FakeEngine) -> None:
    turns = ChatTurns(fake_engine, AppArgs())
    turns.start_blind("s", {"left": "huanhuan", "right": "fake-base"})
    read = turns.blind_models

    def vote_right_after(session: str) -> dict[str, str]:
        kept = read(session)
        turns.end_blind(session)  # the vote reveals them while the action runs
        return kept

    turns.blind_models = vote_right_after
    _, served = apply_action(fake_engine, "reload", "huanhuan")
    move = partial(follow, name="huanhuan", served=served)
    left, right = moved_pickers(turns, AppArgs(), "s", (HIDDEN, served), move)  # the Train tab's tick sends these
    assert "value" not in left and right["value"] == "huanhuan@2", (left, right)


def test_a_hidden_model_no_longer_served_falls_back_as_a_pickers_value_does(fake_engine: FakeEngine) -> None:
    turns = ChatTurns(fake_engine, AppArgs())
    turns.start_blind("s", {"left": "huanhuan", "right": "fake-base"})
    message, _ = apply_action(fake_engine, "unload", "huanhuan")
    pickers = moved_pickers(turns, AppArgs(), "s", (HIDDEN, HIDDEN), lambda model: model)
    assert turns.blind_models("s") == {"left": "fake-base", "right": "fake-base"}, message
    assert ["value" in picker for picker in pickers] == [False, False] and "huanhuan" not in offered(pickers[0])


def test_a_hidden_side_follows_a_reload_even_when_the_server_cannot_list_its_models(fake_engine: FakeEngine) -> None:
    from serving.protocol import EngineError

    turns = ChatTurns(fake_engine, AppArgs())
    turns.start_blind("s", {"left": "fake-base", "right": "huanhuan"})
    _, served = apply_action(fake_engine, "reload", "huanhuan")

    def unreachable() -> list:
        raise EngineError("the model server did not answer")

    fake_engine.models = unreachable
    pickers = moved_pickers(turns, AppArgs(), "s", (HIDDEN, HIDDEN), partial(follow, name="huanhuan", served=served))
    assert turns.blind_models("s") == {"left": "fake-base", "right": "huanhuan@2"}, "would run the unloaded name"
    assert ["value" in picker for picker in pickers] == [False, False]
