"""ServeArgs: the dataclass config of `python -m serving` (the vLLM process), `--config x.yaml` + CLI flags.

Precedence: dataclass default < YAML file < command-line flag. `python -m serving --help` lists every field.
A leading `~` in a path field is expanded once, when the arguments are built: vLLM, its environment and the
checks all see the same full path (vLLM itself would take `~/Models/x` for a hub id).

    python -m serving --model Models/Qwen3-4B-Thinking-2507 --adapters_dir Models/adapters --port 8000
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from common import dataclass_cli
from serving.adapters import VLLM_RANKS

_field = dataclass_cli.config_field
PATH_FIELDS = ("model", "adapters_dir", "api_key_file", "ready_file", "log_path")  # where `~` is expanded


@dataclass
class ServeArgs:
    """How to start vLLM for the side-by-side app: one base model, LoRA adapters hot-loadable at runtime."""

    model: str = _field("Models/Qwen3-4B-Thinking-2507", "base model folder (config + weights + tokenizer)")
    served_model_name: str = _field("", "name the base is served under (default: the model folder's name)")
    adapters_dir: str = _field("Models/adapters", "allow-listed adapters folder; valid adapters in it are preloaded")
    preload_adapters: bool = _field(True, "load every valid adapter of adapters_dir once the server is healthy")
    host: str = _field("127.0.0.1", "address to bind; keep 127.0.0.1 (the app talks to vLLM over loopback)")
    port: int = _field(0, "port to bind; 0 picks a free one")
    api_key_env: str = _field("VLLM_API_KEY", "env var holding the API key; a random key is generated if unset")
    api_key_file: str = _field("", "write the API key to this file (mode 0600) for the app; empty: do not write")
    ready_file: str = _field("", "once healthy, write base_url/model/log path as JSON here (for launch.sh)")
    max_model_len: int = _field(8192, "context per request: prompt + thinking + answer (capped at the model's own)")
    max_lora_rank: int = _field(
        0, f"largest LoRA rank allowed, one of {', '.join(map(str, VLLM_RANKS))}; 0 = from the adapters found (>= 8)"
    )
    max_loras: int = _field(4, "adapters active in one batch (>= 2: base + adapter side by side and a spare)")
    max_cpu_loras: int = _field(
        16,
        "adapters vLLM keeps in CPU memory (>= max_loras); one pushed out is read again from its folder on its next "
        "request, which may have been trained again since it was loaded",
    )
    reasoning_parser: str = _field("qwen3", "vLLM reasoning parser that splits thinking into delta.reasoning")
    dtype: str = _field("auto", "weights dtype passed to vLLM (auto, bfloat16, float16, float32)")
    cpu_kv_cache_gib: int = _field(4, "CPU only: KV cache size in GiB (VLLM_CPU_KVCACHE_SPACE)")
    gpu_memory_utilization: float = _field(
        0.85, "GPU only: share of GPU memory vLLM may use (lower it, e.g. 0.45, to leave room for training)"
    )
    tensor_parallel_size: int = _field(1, "GPUs to split the model across (vLLM's --tensor-parallel-size)")
    startup_timeout_s: float = _field(900.0, "give up when /health is not 200 after this many seconds")
    log_path: str = _field("", "vLLM's log file; empty: logs/vllm-<port>.log")
    extra_args: list[str] = field(
        default_factory=list, metadata={"help": "more vLLM flags, passed as is (comma-separated on the CLI)"}
    )

    def __post_init__(self) -> None:
        for name in PATH_FIELDS:
            setattr(self, name, os.path.expanduser(getattr(self, name)))

    def validate(self) -> ServeArgs:
        problems = []
        if self.max_loras < 2:
            problems.append(f"max_loras must be at least 2 (base + adapter side by side), got {self.max_loras}")
        if self.max_cpu_loras < self.max_loras:
            problems.append(f"max_cpu_loras ({self.max_cpu_loras}) must be at least max_loras ({self.max_loras})")
        if self.max_lora_rank != 0 and self.max_lora_rank not in VLLM_RANKS:
            allowed = ", ".join(map(str, VLLM_RANKS))
            problems.append(
                f"max_lora_rank must be 0 (auto) or one of vLLM's ranks {allowed}, got {self.max_lora_rank}"
            )
        if self.tensor_parallel_size < 1:
            problems.append(f"tensor_parallel_size must be >= 1, got {self.tensor_parallel_size}")
        if not 0 < self.gpu_memory_utilization <= 1:
            problems.append(f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")
        if not 0 <= self.port < 65536:
            problems.append(f"port must be 0..65535, got {self.port}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def build_parser() -> argparse.ArgumentParser:
    return dataclass_cli.build_parser(ServeArgs, "python -m serving")


def parse_serve_args(argv: list[str] | None = None) -> ServeArgs:
    """ServeArgs from an optional YAML file and command-line flags; bad settings exit with the reason."""
    try:
        return dataclass_cli.parse_config(ServeArgs, argv, "python -m serving").validate()
    except ValueError as error:
        raise SystemExit(f"bad serving settings: {error}") from error
