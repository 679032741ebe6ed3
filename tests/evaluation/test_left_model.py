"""The Evaluate tab's left model: it plays the base's part in the plan, and one that is not served is refused."""

from __future__ import annotations

import pytest

from evaluation.cli import EvalError, check_served, left_side
from evaluation.config import EvalArgs
from evaluation.run import EvalItem, EvalPlan
from serving.protocol import BASE_MODEL_ALIAS, ModelInfo


class Listed:
    base_model = "tiny"

    def models(self) -> list[ModelInfo]:
        return [ModelInfo("tiny", is_adapter=False), ModelInfo("huanhuan", is_adapter=True),
                ModelInfo("v2", is_adapter=True), ModelInfo("given-only", is_adapter=False, listed=False)]  # fmt: skip


def test_the_left_model_takes_the_base_side_of_the_plan() -> None:
    item = EvalItem("row 1", "你是谁？", "臣妾甄嬛", ([1], [2]))
    assert EvalPlan("huanhuan", [item], "").model_of("base") == BASE_MODEL_ALIAS
    plan = EvalPlan("huanhuan", [item], "", base="v2")
    assert (plan.model_of("base"), plan.model_of("adapter")) == ("v2", "huanhuan")


def test_a_left_model_that_is_not_served_is_refused_with_what_is() -> None:
    assert check_served(Listed(), "huanhuan", "here", left="v2") == "tiny"
    for missing in ("v3", "given-only"):
        with pytest.raises(EvalError, match=f"the model '{missing}' is not served by here .*huanhuan"):
            check_served(Listed(), "huanhuan", "here", left=missing)


class OnServer(Listed):
    base_url, api_key = "http://127.0.0.1:1/v1", "key"


def test_another_left_model_needs_the_servers_reference_loss() -> None:
    assert left_side(EvalArgs(), Listed(), "tiny", "tiny") == BASE_MODEL_ALIAS
    assert left_side(EvalArgs(), OnServer(), "tiny", "v2") == "v2"
    for args, engine in ((EvalArgs(), Listed()), (EvalArgs(loss="transformers"), OnServer())):
        with pytest.raises(EvalError, match="the left model must be the base 'tiny' here"):
            left_side(args, engine, "tiny", "v2")  # refused before any row is generated
