"""Fixtures of the app tests: the fake engine (unit tests) (pages are served with tests/served_page.py).

Browser fixtures (headless Debian chromium through Playwright, never a downloaded browser) live in
tests/app/browser.py so unit tests do not import Playwright.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_engine import FakeEngine, Script


@pytest.fixture
def fake_engine(tmp_path: Path) -> FakeEngine:
    """Base + a loaded "huanhuan" adapter; fast scripts (no delay)."""
    adapter = tmp_path / "adapters" / "huanhuan"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    return FakeEngine(
        {"fake-base": Script(), "huanhuan": Script(thinking=["臣妾想想"], answer=["皇上", "万福"])},
        adapters={"huanhuan": adapter},
    )
