"""Unit tests of the model pickers' choices (app.adapter_panel.picker_choices) over engines serving ids as
real servers write them: `org/name`, `name:tag`, a path on the server, next to vLLM-style adapters.

    .venv/bin/python -m pytest tests/app/test_app_pickers.py
"""

from __future__ import annotations

from app.adapter_panel import picker_choices
from app.config import AppArgs
from serving.protocol import ModelInfo
from tests.app.fake_engine import FakeEngine


class IdsEngine(FakeEngine):
    """A server that offers whole models by id (no adapters), as transformers serve or Ollama do."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__()
        self.ids = ids

    @property
    def base_model(self) -> str:
        return self.ids[0]

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(model_id, is_adapter=False) for model_id in self.ids]


def test_other_models_are_offered_and_the_right_side_defaults_to_the_first_of_them() -> None:
    engine = IdsEngine(["Qwen/Qwen3-4B-Thinking-2507", "/models/huanhuan-merged", "qwen3:4b"])
    left, right = picker_choices(engine, AppArgs(), None, None)
    assert (
        left["choices"]
        == right["choices"]
        == [
            ("Qwen/Qwen3-4B-Thinking-2507 (base)", "Qwen/Qwen3-4B-Thinking-2507"),
            ("/models/huanhuan-merged", "/models/huanhuan-merged"),
            ("qwen3:4b", "qwen3:4b"),
        ]
    )
    assert (left["value"], right["value"]) == ("Qwen/Qwen3-4B-Thinking-2507", "/models/huanhuan-merged")
    kept = picker_choices(engine, AppArgs(), "qwen3:4b", "qwen3:4b")
    assert kept[0]["value"] == kept[1]["value"] == "qwen3:4b"


def test_a_loaded_default_adapter_still_wins_the_right_side(fake_engine: FakeEngine) -> None:
    _, right = picker_choices(fake_engine, AppArgs(default_adapter="huanhuan"), None, None)
    assert right["value"] == "huanhuan"
    _, alone = picker_choices(IdsEngine(["base-only"]), AppArgs(), None, None)
    assert alone["value"] == "base-only"
