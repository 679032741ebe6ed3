"""Fixtures of the serving tests: LoRA adapters crafted with peft (good and deliberately bad ones), and the
engines the contract tests run against (`served`: vLLM, LocalEngine, transformers serve).

`make_adapter(folder, r=8, use_dora=False, modules_to_save=None)` saves a real peft adapter of the tiny
model (random non-zero LoRA weights, so it answers differently from the base); tests then break copies of
it on purpose (missing files, .bin weights, wrong base, bad JSON, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from common.qwen3 import QWEN3_LORA_TARGETS
from tests.support.serving_test_helpers import ServedEngine


@pytest.fixture(scope="session")
def make_adapter(tiny_model_dir: Path) -> Callable[..., Path]:
    """Build real peft LoRA adapters on the tiny model (the base model is loaded once per session)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)

    def build(folder: Path, r: int = 8, seed: int = 0, **lora_kwargs) -> Path:
        torch.manual_seed(seed)
        config = LoraConfig(
            r=r, lora_alpha=32, target_modules=list(QWEN3_LORA_TARGETS), task_type="CAUSAL_LM", **lora_kwargs
        )
        config.init_lora_weights = False  # random A and B: the adapter really changes the output
        model = get_peft_model(base, config)
        model.save_pretrained(folder)
        model.unload()
        return Path(folder)

    return build


@pytest.fixture(scope="session")
def good_adapter(make_adapter: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_adapter(tmp_path_factory.mktemp("good") / "good")


@pytest.fixture(scope="session")
def local_engine(tiny_model_dir: Path, served_adapters_dir: Path):
    """LocalEngine (transformers + peft in-process) serving the vLLM server's adapters folder by name, with the
    trained adapter loaded as `huanhuan`."""
    from serving.local_engine import LocalEngine

    engine = LocalEngine(tiny_model_dir, adapters_dir=served_adapters_dir)
    engine.load_adapter("huanhuan")
    return engine


@pytest.fixture(
    params=[
        pytest.param("openai", marks=[pytest.mark.slow, pytest.mark.vllm]),
        pytest.param("local", marks=[pytest.mark.slow]),
    ]
)
def engine(request: pytest.FixtureRequest):
    """Each engine in turn: OpenAIEngine on the shared real vLLM server, then LocalEngine."""
    if request.param == "openai":
        return request.getfixturevalue("vllm_server").engine()
    return request.getfixturevalue("local_engine")


@pytest.fixture(scope="session")
def transformers_engine(transformers_server):
    """OpenAIEngine on the real `transformers serve` (one per session: it learns once that top_k is refused)."""
    return transformers_server.engine()


@pytest.fixture(
    params=[
        pytest.param("vllm", marks=[pytest.mark.slow, pytest.mark.vllm]),
        pytest.param("local", marks=[pytest.mark.slow]),
        pytest.param("transformers", marks=[pytest.mark.slow, pytest.mark.transformers_serve]),
    ]
)
def served(request: pytest.FixtureRequest) -> ServedEngine:
    """Each engine in turn: OpenAIEngine on vLLM, LocalEngine, OpenAIEngine on `transformers serve`."""
    if request.param == "vllm":
        return ServedEngine(request.getfixturevalue("vllm_server").engine(), "huanhuan")
    if request.param == "local":
        return ServedEngine(request.getfixturevalue("local_engine"), "huanhuan")
    server = request.getfixturevalue("transformers_server")
    return ServedEngine(request.getfixturevalue("transformers_engine"), server.tuned_model, tuned_is_adapter=False,
                        checks_context=False, refuses_unknown_models=False)  # fmt: skip
