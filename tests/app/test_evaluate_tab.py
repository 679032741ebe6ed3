"""The Evaluate tab's pieces without a browser: the knobs' validation (bad input gets one clear message), the
per-session Stop (also when the page goes away mid-run), the progress bar's text and the win-rate line it reads
from the votes folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import AppArgs
from app.evaluate_tab import DEFAULT_ROWS, EvalRuns, _eval_args, progress_html, votes_line
from app.votes import VoteStore
from tests.app.fake_engine import FakeEngine


class Served:
    base_url = "http://127.0.0.1:8000/v1"


def test_the_knobs_become_evaluation_args(tmp_path: Path) -> None:
    settings = AppArgs(adapters_dir=str(tmp_path), model="/models/tiny", seed=5)
    args = _eval_args(Served(), settings, "huanhuan", DEFAULT_ROWS, 32)
    assert (args.adapter, args.adapters_dir, args.model) == ("huanhuan", str(tmp_path), "/models/tiny")
    assert (args.limit, args.max_tokens, args.seed, args.engine, args.base_url) == (
        8,
        32,
        5,
        "openai",
        Served.base_url,
    )
    assert _eval_args(object(), settings, "huanhuan", 0, 1).engine == "local"
    retrained = _eval_args(Served(), settings, "huanhuan@2", 8, 32)  # the Train tab's fresh served name
    assert (retrained.adapter, retrained.served_adapter) == ("huanhuan", "huanhuan@2")


@pytest.mark.parametrize(
    ("adapters", "right", "rows", "tokens", "message"),
    [
        (None, "huanhuan", 8, 16, "no adapters folder is configured"),
        ("x", "", 8, 16, "choose the right model"),
        ("x", "huanhuan", "many", 16, "whole numbers"),
        ("x", "huanhuan", -1, 16, "rows must be >= 0"),
        ("x", "huanhuan", 8, 9000, "max new tokens 1 to 8192"),
    ],
)
def test_bad_knobs_get_one_clear_message(adapters, right, rows, tokens, message, tmp_path: Path) -> None:
    settings = AppArgs(adapters_dir=str(tmp_path) if adapters else "")
    with pytest.raises(ValueError, match=message):
        _eval_args(Served(), settings, right, rows, tokens)


def test_stop_reaches_only_the_sessions_own_run() -> None:
    runs = EvalRuns()
    first, other = runs.start("s1"), runs.start("s2")
    assert runs.stop("s1") and first.is_set() and not other.is_set()
    assert not runs.stop("nobody")
    again = runs.start("s2")  # a new run of the same session ends its previous one
    assert other.is_set() and not again.is_set()
    runs.finish("s2", other)  # an older run ending leaves the newer one stoppable
    assert runs.stop("s2") and again.is_set()
    runs.finish("s2", again)
    assert not runs.stop("s2")  # a finished run is not "running"


def test_a_run_whose_page_went_away_stops_its_work() -> None:
    runs, events = EvalRuns(), []

    def work(stop):
        events.append(stop)
        yield "first rows"
        yield "more rows"

    page = runs.run("s1", work)
    assert next(page) == "first rows" and not events[0].is_set()
    page.close()  # what Gradio does to a running event's generator when the page is closed or reloaded
    assert events[0].is_set(), "the evaluation's work thread would go on through every row"
    assert not runs.stop("s1")


def test_a_run_that_ends_is_no_longer_running() -> None:
    runs = EvalRuns()
    assert list(runs.run("s1", lambda stop: iter(["all rows"]))) == ["all rows"]
    assert not runs.stop("s1")


def test_progress_and_votes_lines(tmp_path: Path) -> None:
    assert 'value="2" max="5"' in progress_html("generate", 2, 5) and "replies: 2/5 rows" in progress_html(
        "generate", 2, 5
    )
    assert "reference loss: 1/5 rows" in progress_html("loss", 1, 5)
    settings = AppArgs(votes_dir=str(tmp_path))
    engine = FakeEngine()  # says no weights: the votes count by name
    assert "none yet" in votes_line(engine, settings, "huanhuan")
    VoteStore(tmp_path).append({"vote": "right", "left": {"model": "base"}, "right": {"model": "huanhuan"}})
    assert "1 win(s), 0 loss(es)" in votes_line(engine, settings, "huanhuan")


def test_a_run_without_progress_still_yields_so_a_closed_page_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    import evaluation.cli
    from app.evaluate_tab import STILL_EVERY_S, _run

    (tmp_path / "huanhuan").mkdir()
    (tmp_path / "huanhuan" / "adapter_config.json").write_text("{}")
    stopped = threading.Event()

    def blocked(args, progress, stop, engine, left):  # a row that takes long: no progress until stopped
        stop.wait(30)
        stopped.set()
        raise evaluation.cli.EvalError("stopped")

    monkeypatch.setattr(evaluation.cli, "run_evaluation", blocked)
    settings = AppArgs(adapters_dir=str(tmp_path), model="/models/tiny")
    page = EvalRuns().run("s1", lambda stop: _run(Served(), settings, stop, "tiny", "huanhuan", 8, 16))
    assert "replies: 0/0" in next(page)[0]
    started = time.monotonic()
    next(page)  # nothing to show, but the generator comes back (it would wait for the row otherwise)
    assert time.monotonic() - started < STILL_EVERY_S + 2
    page.close()  # the page went away
    assert stopped.wait(5), "the evaluation went on after its page closed"


def test_opening_the_tab_offers_the_adapters_served_now(tmp_path: Path) -> None:
    """Trained in the Train tab, or reloaded in the Adapters panel, after the page was built."""
    from app.evaluate_tab import refreshed
    from tests.support.serving_test_helpers import write_adapter

    write_adapter(tmp_path / "adapters" / "huanhuan")
    engine = FakeEngine(adapters_dir=tmp_path / "adapters")
    settings = AppArgs(votes_dir=str(tmp_path / "votes"), default_adapter="huanhuan")
    engine.load_adapter("huanhuan")
    write_adapter(tmp_path / "adapters" / "mine")
    engine.load_adapter("mine")
    left, right, votes = refreshed(engine, settings, "fake-base", "mine")
    assert ("mine", "mine") in right["choices"] and right["value"] == "mine" and left["value"] == "fake-base"
    assert "Blind votes for `mine`" in votes
    engine.reload_adapter("huanhuan")  # served as huanhuan@2 now: the old name is gone
    _, right, _ = refreshed(engine, settings, "fake-base", "huanhuan")
    assert right["value"] == "huanhuan@2" and ("huanhuan", "huanhuan") not in right["choices"]
