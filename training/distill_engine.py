"""The thinker for distilled thinking: which engine writes the thinking, and what identifies it in the cache.

`distill_engine` picks it: `vllm` starts the real vLLM server on the base model here (stopped before training
begins, so the GPU is free again), `local` loads transformers + peft in-process and batches rows into one
`generate`, `openai` talks to a server that is already running (`distill_base_url`, the key in the
environment variable `distill_api_key_env`), `auto` is vllm where it is installed, else local. With
`distill_adapter` the thinker is that adapter on the base (vllm/local); with openai, `distill_model` names
what the server serves. Everything goes through serving's engine protocol and factory.

    with open_thinker(args, log) as thinker:
        thinker.engine.open_streams([...]); thinker.model; thinker.batched
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.adapters import weights_sha256
from training.checkpoints import model_identity
from training.config import TrainArgs

THINKER_ADAPTER_NAME = "thinker"


@dataclass
class Thinker:
    """An engine, the model name to ask for, and whether rows should be sent as batches (LocalEngine)."""

    engine: Any
    model: str
    batched: bool


def resolve_kind(args: TrainArgs) -> str:
    if args.distill_engine != "auto":
        return args.distill_engine
    return "vllm" if importlib.util.find_spec("vllm") is not None else "local"


def thinker_identity(args: TrainArgs) -> dict[str, Any]:
    """What decides the thinker's outputs (for the cache key); vllm and local share it (same model, same weights)."""
    if resolve_kind(args) == "openai":
        return {"server": args.distill_base_url.rstrip("/"), "model": args.distill_model}
    identity: dict[str, Any] = {"model": model_identity(args.model_name_or_path), "adapter": None}
    if args.distill_adapter:
        identity["adapter"] = weights_sha256(Path(args.distill_adapter)) or None
    return identity


@contextmanager
def open_thinker(args: TrainArgs, log: Callable[[str], None]) -> Iterator[Thinker]:
    """The thinker engine for the duration of the block (a server started here is stopped after it)."""
    kind = resolve_kind(args)
    if kind == "openai":
        from serving.factory import create_engine

        api_key = os.environ.get(args.distill_api_key_env, "") if args.distill_api_key_env else ""
        engine = create_engine("openai", base_url=args.distill_base_url, api_key=api_key)
        yield Thinker(engine, args.distill_model, False)
    elif kind == "local":
        with _local_thinker(args, log) as thinker:
            yield thinker
    else:
        with _vllm_thinker(args, log) as thinker:
            yield thinker


@contextmanager
def _local_thinker(args: TrainArgs, log: Callable[[str], None]) -> Iterator[Thinker]:
    import gc

    from serving.factory import create_engine

    adapters = {THINKER_ADAPTER_NAME: Path(args.distill_adapter)} if args.distill_adapter else None
    log(f"thinker: LocalEngine on {args.model_name_or_path}" + (f" + {args.distill_adapter}" if adapters else ""))
    thinker = Thinker(create_engine("local", model_path=args.model_name_or_path, adapters=adapters),
                      THINKER_ADAPTER_NAME if adapters else "base", True)  # fmt: skip
    try:
        yield thinker
    finally:
        thinker.engine = None  # free the thinker's weights before training loads the model again
        gc.collect()


@contextmanager
def _vllm_thinker(args: TrainArgs, log: Callable[[str], None]) -> Iterator[Thinker]:
    from serving.adapters import read_adapter_config, vllm_rank_for
    from serving.gpu_share import gpu_share_beside_others
    from serving.serve_args import ServeArgs
    from serving.vllm_server import VLLMServer

    rank = 8
    if args.distill_adapter:
        config, _ = read_adapter_config(Path(args.distill_adapter))
        rank = max(rank, int((config or {}).get("r") or 8))
    with tempfile.TemporaryDirectory(prefix="distill-adapters-") as empty_dir:
        serve = ServeArgs(
            model=args.model_name_or_path,
            served_model_name="thinker-base",
            adapters_dir=empty_dir,
            preload_adapters=False,
            api_key_env="",  # a fresh random key, never the user's
            max_lora_rank=vllm_rank_for(rank) or rank,
            log_path=str(Path(args.output_dir) / "distill-vllm.log"),
            gpu_memory_utilization=gpu_share_beside_others(Path(args.model_name_or_path)),  # beside the app's server
        )
        log(f"thinker: starting vLLM on {args.model_name_or_path} (log {serve.log_path})")
        with VLLMServer(serve) as server:
            engine = server.engine()
            model = "base"
            if args.distill_adapter:
                engine.load_adapter_path(THINKER_ADAPTER_NAME, Path(args.distill_adapter))
                model = THINKER_ADAPTER_NAME
            log(f"thinker: vLLM ready in {server.startup_s:.0f} s")
            yield Thinker(engine, model, False)
