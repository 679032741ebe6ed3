"""The app over the in-process LocalEngine (transformers + peft, the tiny Qwen3 and the trained adapter):
ChatTurns runs a side-by-side turn on it, and `python -m app --engine local` starts end to end and answers.

    .venv/bin/python -m pytest tests/app/test_app_local_engine.py
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import AppArgs
from app.turns import ChatTurns, TurnInputs
from common.qwen3 import ZHEN_HUAN_PERSONA
from serving.protocol import SamplingParams
from tests.support.load_drivers import run_turn
from tests.support.reliability_helpers import AppProcess, start_app

pytestmark = pytest.mark.slow
GREEDY = SamplingParams(temperature=0.0, max_tokens=12, seed=0)


@pytest.fixture(scope="module")
def adapters_dir(adapters_folder) -> Path:
    return adapters_folder("local-adapters")


def test_chat_turns_over_a_real_local_engine(tiny_model_dir: Path, adapters_dir: Path) -> None:
    from serving.local_engine import LocalEngine

    engine = LocalEngine(tiny_model_dir, adapters_dir=adapters_dir)
    assert engine.load_adapter("huanhuan") == "huanhuan"  # by name, from its adapters folder
    turns = ChatTurns(engine, AppArgs())
    models = {"left": engine.base_model, "right": "huanhuan"}
    inputs = TurnInputs("你是谁？", models, GREEDY, system_prompt=ZHEN_HUAN_PERSONA)
    views = list(turns.send(inputs, [], "session"))
    replies = views[-1].exchanges[-1].replies
    assert not views[-1].running
    for side in ("left", "right"):
        reply = replies[side]
        assert reply.status == "done" and reply.error is None, (side, reply)
        assert reply.model == models[side] and (reply.thinking or reply.answer), (side, reply)
    texts = {side: replies[side].thinking + replies[side].answer for side in replies}
    assert texts["left"] != texts["right"], "the adapter side runs the adapter, not the base again"


@pytest.fixture(scope="module")
def local_app(
    tiny_model_dir: Path, adapters_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppProcess]:
    log = tmp_path_factory.mktemp("local-app") / "app.log"
    args = ["--engine", "local", "--model", str(tiny_model_dir), "--adapters-dir", str(adapters_dir),
            "--max-new-tokens", "8"]  # fmt: skip
    app = start_app(args, log, timeout_s=600)
    try:
        yield app
    finally:
        app.stop()


def test_engine_local_starts_end_to_end_and_the_page_answers(local_app: AppProcess, tiny_model_dir: Path) -> None:
    from gradio_client import Client

    client = Client(local_app.url, verbose=False)
    try:
        result = run_turn(client, (tiny_model_dir.name, "huanhuan"), max_tokens=8, timeout_s=300)
    finally:
        client.close()
    assert result.outcome == "done", f"{result}\n{local_app.log()[-2000:]}"
