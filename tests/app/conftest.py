"""Fixtures of the app tests: the fake engine (unit tests) (pages are served with tests/support/served_page.py).

The page driver (headless Debian chromium through Playwright, never a downloaded browser) lives in
tests/support/browser.py and is imported only when a browser test asks for the `browser` / `app` fixtures, so
unit tests do not import Playwright. A browser test module defines `app_url`, the page to open.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.fake_engine import FakeEngine, Script


@pytest.fixture
def fake_engine(tmp_path: Path) -> FakeEngine:
    """Base + a loaded "huanhuan" adapter (a folder that passes validation); fast scripts (no delay)."""
    import json

    import numpy as np
    from safetensors.numpy import save_file

    adapter = tmp_path / "adapters" / "huanhuan"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, "bias": "none"}))
    save_file({"model.layers.0.self_attn.q_proj.lora_A.weight": np.zeros((8, 16), np.float32)},
              str(adapter / "adapter_model.safetensors"))  # fmt: skip
    return FakeEngine(
        {"fake-base": Script(), "huanhuan": Script(thinking=["臣妾想想"], answer=["皇上", "万福"])},
        adapters={"huanhuan": adapter},
        adapters_dir=adapter.parent,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless chromium per browser test module."""
    from tests.support.browser import chromium

    with chromium() as launched:
        yield launched


@pytest.fixture
def app(browser, app_url: str) -> Iterator[object]:
    """The module's page (`app_url`) in a fresh browser context, as an AppPage."""
    from tests.support.browser import AppPage

    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    try:
        yield AppPage(context.new_page()).open(app_url)
    finally:
        context.close()
