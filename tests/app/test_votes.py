"""The blind-vote store (JSONL, one atomic line per vote, survives a new store object) and the Wilson interval.

The interval's known values are Newcombe's (Statistics in Medicine 1998, 17:857-872, Table I, method 3).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from app.votes import VoteStore, WinRate, wilson_interval, win_rate


@pytest.mark.parametrize(
    ("wins", "n", "low", "high"),
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_interval_matches_newcombe(wins: int, n: int, low: float, high: float) -> None:
    got = wilson_interval(wins, n)
    assert got == pytest.approx((low, high), abs=6e-5)


def test_wilson_interval_without_votes_is_everything() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


def vote(choice: str, left: str = "huanhuan", right: str = "base", prompt: str = "你是谁？") -> dict:
    sides = {"left": {"model": left, "answer": "臣妾在此"}, "right": {"model": right, "answer": "我是助手"}}
    return {"vote": choice, "prompt": prompt, "seed": 7, **sides}


def test_votes_survive_a_new_store_and_keep_prompt_replies_models_and_seed(tmp_path: Path) -> None:
    VoteStore(tmp_path).append(vote("left"))
    VoteStore(tmp_path).append(vote("tie"))
    loaded = VoteStore(tmp_path).load()
    assert [v["vote"] for v in loaded] == ["left", "tie"]
    assert loaded[0]["prompt"] == "你是谁？" and loaded[0]["seed"] == 7
    assert loaded[0]["left"] == {"model": "huanhuan", "answer": "臣妾在此"} and loaded[0]["right"]["model"] == "base"
    assert "time" in loaded[0]


def test_a_bad_vote_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    store = VoteStore(tmp_path)
    with pytest.raises(ValueError, match="left, right, tie, both_bad"):
        store.append(vote("maybe"))
    assert not store.path.exists()


def test_a_line_cut_by_a_crash_is_skipped(tmp_path: Path) -> None:
    store = VoteStore(tmp_path)
    store.append(vote("right"))
    with store.path.open("a", encoding="utf-8") as handle:
        handle.write('{"vote": "left", "prompt": "cut')
    assert [v["vote"] for v in store.load()] == ["right"]


def test_concurrent_appends_give_whole_lines(tmp_path: Path) -> None:
    store = VoteStore(tmp_path)
    long_prompt = "宫" * 20000
    threads = [threading.Thread(target=store.append, args=(vote("left", prompt=long_prompt),)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = store.path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 8 and all(json.loads(line)["prompt"] == long_prompt for line in lines)


def test_win_rate_counts_the_adapter_on_either_side_and_leaves_ties_apart() -> None:
    votes = [
        vote("left"),  # adapter on the left wins
        vote("right", left="base", right="huanhuan"),  # adapter on the right wins
        vote("right"),  # adapter on the left loses
        vote("tie"),
        vote("both_bad"),
        vote("left", left="other", right="base"),  # the adapter was not there
        vote("left", left="huanhuan", right="huanhuan"),  # against itself: not counted
    ]
    rate = win_rate(votes, "huanhuan")
    assert (rate.wins, rate.losses, rate.ties, rate.both_bad) == (2, 1, 1, 1)
    assert rate.rate == pytest.approx(2 / 3)
    assert rate.interval == pytest.approx(wilson_interval(2, 3))
    text = rate.describe()
    assert "2 win(s), 1 loss(es)" in text and "67%" in text and "1 tie(s) and 1 'both bad'" in text


def test_win_rate_without_votes_says_so() -> None:
    assert "none yet" in WinRate("huanhuan", 0, 0, 0, 0).describe()
    assert "no decided one" in WinRate("huanhuan", 0, 0, 2, 0).describe()


def test_a_vote_counts_for_the_weights_not_the_served_name() -> None:
    def weighed(choice: str, right: str, weights: str | None) -> dict:
        record = vote(choice, left="base", right=right)
        if weights is not None:
            record["right"]["weights_sha256"] = weights
        return record

    votes = [
        weighed("right", "huanhuan", "w1"),  # won, served as `huanhuan`
        weighed("right", "huanhuan@2", "w1"),  # won again after a Reload of the same weights
        weighed("left", "huanhuan@3", "w2"),  # lost, after a retrain: other weights
        weighed("left", "huanhuan", None),  # an older vote, without weights: counted by name
    ]
    now = win_rate(votes, "huanhuan@2", "w1")
    assert (now.wins, now.losses) == (2, 0), "the Reload kept the record; the retrained adapter's loss is not it"
    retrained = win_rate(votes, "huanhuan@3", "w2")
    assert (retrained.wins, retrained.losses) == (0, 1)
    by_name = win_rate(votes, "huanhuan")
    assert (by_name.wins, by_name.losses) == (1, 1), "without weights known, the served name decides"
