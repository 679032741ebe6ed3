"""create_engine: build an engine by kind ("openai" or "local"), importing its heavy packages only then.

engine = create_engine("openai", base_url="http://127.0.0.1:8000/v1", api_key=os.environ["VLLM_API_KEY"])
engine = create_engine("local", model_path="Models/tiny-qwen3", adapters_dir="Models/adapters")
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

from serving.protocol import Engine, EngineUnavailableError

EngineKind = Literal["openai", "local"]
INSTALL_HINT = "install the runtime requirements: `bash scripts/install.sh` (or pip install -r requirements.txt)"


def _require(*modules: str, purpose: str) -> None:
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise EngineUnavailableError(f"{purpose} needs the Python package(s) {', '.join(missing)}; {INSTALL_HINT}")


def create_engine(
    kind: EngineKind,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    base_model: str | None = None,
    model_path: str | Path | None = None,
    adapters: dict[str, Path] | None = None,
    adapters_dir: str | Path | None = None,
    max_lora_rank: int | None = None,
    model_ids: list[str] | None = None,
    strict_openai: bool = False,
) -> Engine:
    """An OpenAIEngine (base_url + api_key [+ base_model, model_ids, strict_openai]) or a LocalEngine
    (model_path [+ adapters_dir, the folder it serves adapters from by name; adapters, name -> folder loaded now])."""
    if kind == "openai":
        if not base_url:
            raise ValueError("the openai engine needs base_url, e.g. http://127.0.0.1:8000/v1")
        _require("openai", "httpx", purpose="the openai engine")
        from serving.openai_engine import OpenAIEngine

        return OpenAIEngine(base_url, api_key or "EMPTY", base_model, max_lora_rank=max_lora_rank,
                            model_ids=model_ids or (), strict_openai=strict_openai)  # fmt: skip
    if kind == "local":
        if not model_path:
            raise ValueError("the local engine needs model_path, a model folder (config + weights + tokenizer)")
        if not Path(model_path).is_dir():
            raise EngineUnavailableError(f"model folder {model_path} does not exist")
        _require("torch", "transformers", "peft", purpose="the local engine")
        from serving.local_engine import LocalEngine

        return LocalEngine(Path(model_path), adapters=adapters, adapters_dir=adapters_dir)
    raise ValueError(f"unknown engine kind {kind!r}: use 'openai' or 'local'")
