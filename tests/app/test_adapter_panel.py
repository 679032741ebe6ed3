"""The Adapters panel sends names only, one engine call per action, and a side follows a reload's fresh name;
the app package imports only the engine protocol and the factory from serving.

    .venv/bin/python -m pytest tests/app/test_adapter_panel.py
"""

from __future__ import annotations

import ast
from pathlib import Path

from app.adapter_panel import TABLE_HEADERS, apply_action, follow, panel_values
from app.config import AppArgs
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
