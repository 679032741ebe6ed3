"""EvalArgs: the dataclass config of `python -m evaluation`, from `--config x.yaml` plus command-line flags.

python -m evaluation --adapter huanhuan                               # start vLLM on the base + adapters
python -m evaluation --adapter huanhuan --engine openai --base-url http://127.0.0.1:8000/v1
python -m evaluation --adapter huanhuan --engine local --limit 50     # transformers + peft in-process
"""

from __future__ import annotations

from dataclasses import dataclass

from common import dataclass_cli
from evaluation.scores import DEFAULT_MARKERS

_field = dataclass_cli.config_field
ENGINES = ("vllm", "openai", "local")


@dataclass
class EvalArgs:
    """What one evaluation of an adapter against its base needs; the sampling defaults are the app's."""

    adapter: str = _field("huanhuan", "adapter to evaluate: a folder name in adapters_dir (or a folder path)")
    adapters_dir: str = _field("Models/adapters", "adapters folder")
    engine: str = _field("vllm", "vllm (start a vLLM server here), openai (a running server: --base-url) or local")
    base_url: str = _field("", "with --engine openai: the server's /v1 URL")
    api_key_env: str = _field("VLLM_API_KEY", "with --engine openai: the environment variable holding its API key")
    base_model: str = _field("", "with --engine openai: the served base model name (default: the first it lists)")
    served_adapter: str = _field("", "the name the adapter is served under (default: its folder name)")
    model: str = _field("", "base model folder (tokenizer; vllm/local engines); default: the one it was trained on")
    dataset: str = _field("", "the training dataset (default: the path recorded at training time)")
    limit: int = _field(0, "evaluate only the first N held-out rows (0 = all)")
    max_tokens: int = _field(512, "max new tokens per reply (thinking + answer)")
    temperature: float = _field(0.6, "sampling temperature (0 = greedy), the same on both sides")
    top_p: float = _field(0.95, "nucleus sampling")
    top_k: int = _field(20, "top-k sampling (-1 = off)")
    seed: int = _field(0, "sampling seed, the same on both sides; also seeds the bootstrap")
    concurrency: int = _field(16, "requests in flight at once (vLLM); rows x 2 per batched generate (local)")
    markers: list[str] = dataclass_cli.config_field(
        DEFAULT_MARKERS, "persona markers counted in the answers (comma-separated)"
    )
    loss: str = _field("auto", "reference loss from 'vllm' (prompt_logprobs), 'transformers', or 'auto'")
    out_dir: str = _field("", "report folder (default: <adapter folder>/eval)")
    max_model_len: int = _field(4096, "with --engine vllm: context per request")
    cpu_kv_cache_gib: int = _field(2, "with --engine vllm on a CPU: KV cache size in GiB")

    def validate(self) -> EvalArgs:
        problems = []
        if self.engine not in ENGINES:
            problems.append(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.engine == "openai" and not self.base_url:
            problems.append("--engine openai needs --base-url (the server's /v1 URL)")
        if self.loss not in ("auto", "vllm", "transformers"):
            problems.append(f"loss must be auto, vllm or transformers, got {self.loss!r}")
        if self.engine == "local" and self.loss == "vllm":
            problems.append("--engine local computes the reference loss with transformers; drop --loss vllm")
        if self.limit < 0 or self.concurrency < 1 or self.max_tokens < 1:
            problems.append("limit must be >= 0, concurrency and max_tokens >= 1")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def parse_eval_args(argv: list[str] | None = None) -> EvalArgs:
    return dataclass_cli.parse_config(EvalArgs, argv, "python -m evaluation").validate()
