"""What the real page (headless chromium) shows for text that looks like HTML: a reply whose thinking never
closed is titled "Thinking never closed (no </think>)" with the tag visible, not eaten by the sanitizer.

The fake engine is enough here: the title comes from app/render.py whatever engine produced the reply.

    .venv/bin/python -m pytest tests/app/test_app_render_browser.py
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.config import AppArgs
from app.ui import build_demo
from tests.app.fake_engine import FakeEngine, Script
from tests.support.browser import AppPage
from tests.support.served_page import serve_demo

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    adapter = tmp_path_factory.mktemp("adapters") / "huanhuan"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    never_closes = Script(thinking=["还在想", "……"], answer=[])  # no answer pieces: the thinking never closes
    engine = FakeEngine({"fake-base": never_closes, "huanhuan": never_closes}, adapters={"huanhuan": adapter})
    yield from serve_demo(build_demo(engine, AppArgs()))


def test_the_never_closed_title_shows_the_think_tag_literally(app: AppPage) -> None:
    app.send("你是谁？")
    app.wait_finished()
    for side in ("left", "right"):
        text = app.page.inner_text(f"#chat-{side}")
        assert "Thinking never closed (no </think>)" in text, text
