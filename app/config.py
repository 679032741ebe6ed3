"""AppArgs: the one config of the app: `python -m app` parses it from `--config x.yaml` and flags, and the
parsed dataclass itself is what `build_demo(engine, args)` gets (tests build it directly: `AppArgs(port=0)`).

Precedence: dataclass default < YAML file < command-line flag. Flags accept dashes or underscores
(`--adapters-dir` = `--adapters_dir`). `python -m app --help` lists every field.

    python -m app --engine openai --base-url http://127.0.0.1:8000/v1 --api-key-env VLLM_API_KEY
    python -m app --engine local --model .cache/tiny-qwen3 --adapters-dir Models/adapters
    python -m app --base-url http://127.0.0.1:8000/v1 --base-model Qwen/Qwen3-4B-Thinking-2507 --models /models/x
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path

from app.personas import DEFAULT_PERSONA
from common import dataclass_cli

_field = dataclass_cli.config_field
UPLOAD_SIZE = re.compile(r"\d+\s*(b|kb|mb|gb)")  # what gradio.utils._parse_file_size reads


@dataclass
class AppArgs:
    """Start the side-by-side page over an OpenAI-compatible server (vLLM) or an in-process local engine."""

    engine: str = _field("openai", "openai (any OpenAI-compatible server, e.g. vLLM) or local (transformers + peft)")
    base_url: str = _field("http://127.0.0.1:8000/v1", "openai engine: the server's /v1 URL")
    api_key_env: str = _field("VLLM_API_KEY", "openai engine: env var holding the server's API key")
    api_key_file: str = _field("", "openai engine: file holding the API key (used when the env var is unset)")
    base_model: str = _field("", "openai engine: served name of the base model; empty = the first the server lists")
    models: list[str] = dataclass_cli.config_field(
        [], "openai engine: more model ids to offer, as the server writes them (org/name, name:tag, a path it knows)"
    )
    strict_openai: bool = _field(False, "openai engine: send only OpenAI's own parameters (never top_k)")
    model: str = _field("", "local engine: base model folder (config + weights + tokenizer)")
    adapters_dir: str = _field(
        "Models/adapters", "local engine: the folder it serves adapters from by name (a vLLM server has its own)"
    )
    default_adapter: str = _field("huanhuan", "adapter shown on the right side by default (when loaded)")
    host: str = _field("127.0.0.1", "address the page binds; 0.0.0.0 exposes it to the network (needs auth)")
    port: int = _field(7860, "port the page binds; 0 picks a free one")
    share: bool = _field(False, "create a public gradio.live link (refused without auth)")
    auth: str = _field("", "user:password required to open the page")
    auth_file: str = _field("", "file with one user:password per line")
    auth_env: str = _field("APP_AUTH", "env var holding user:password (used when --auth and --auth-file are empty)")
    concurrency_limit: int = _field(8, "turns streaming at once over all users (each turn holds two streams)")
    max_queue_size: int = _field(64, "events waiting beyond the running ones; more are refused as 'queue full'")
    max_new_tokens: int = _field(2048, "default of the max new tokens slider (thinking + answer together)")
    max_new_tokens_limit: int = _field(8192, "largest max new tokens a request may ask for")
    votes_dir: str = _field("data/votes", "where blind votes are kept (votes.jsonl; survives restarts)")
    max_message_chars: int = _field(16000, "longest message accepted from the page")
    max_upload_size: str = _field("1mb", "largest file Gradio's upload route accepts (a Train tab dataset upload)")
    persona: str = _field(DEFAULT_PERSONA, "persona preset selected when the page opens")
    temperature: float = _field(0.6, "default sampling temperature")
    top_p: float = _field(0.95, "default top_p")
    top_k: int = _field(20, "default top_k (-1: off)")
    seed: int = _field(0, "default seed (the same on both sides)")
    export_dir: str = _field("", "where conversation exports are written; empty = a fresh temporary folder")
    title: str = _field("Qwen3 Thinking: base vs Zhen Huan LoRA", "the page title")
    train_model: str = _field("", "Train tab: the base model folder to train on (empty: --model; none: no Train tab)")
    train_dataset: str = _field("Datasets/huanhuan.json", "Train tab: the default dataset")
    train_config: str = _field("configs/lora_qwen3_4b_thinking.yaml", "Train tab: the default config preset")
    jobs_dir: str = _field("runs/jobs", "Train tab: where each training job keeps its state, log and run")
    max_lora_rank: int = _field(0, "Train tab: the server's --max-lora-rank (a larger rank is refused); 0: unchecked")
    allow_training: bool = _field(False, "offer the Train tab on a public --share link too (it is off there)")

    def validate(self) -> AppArgs:
        problems = []
        if self.engine not in ("openai", "local"):
            problems.append(f"engine must be openai or local, got {self.engine!r}")
        if self.engine == "local" and not self.model:
            problems.append("--engine local needs --model DIR")
        if not 0 <= self.port < 65536:
            problems.append(f"port must be 0..65535, got {self.port}")
        if self.concurrency_limit < 1 or self.max_queue_size < 1:
            problems.append("concurrency_limit and max_queue_size must be at least 1")
        if not UPLOAD_SIZE.fullmatch(self.max_upload_size.strip().lower()):
            problems.append(
                f"max_upload_size must be a whole number with b, kb, mb or gb, like 1mb, got {self.max_upload_size!r}"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


def training_refusal(args: AppArgs) -> str | None:
    """Why the page offers no Train tab (None: it offers one)."""
    if args.share and not args.allow_training:
        return "no Train tab on a public --share link (add --allow-training to offer it there)"
    if not (args.train_model or args.model):
        return "no Train tab: no base model folder to train on (--train-model DIR)"
    return None


def resolve_auth(args: AppArgs) -> list[tuple[str, str]]:
    """The (user, password) pairs from --auth, --auth-file or the auth env var; empty when none is set."""
    lines: list[str] = []
    if args.auth:
        lines = [args.auth]
    elif args.auth_file:
        lines = Path(args.auth_file).read_text(encoding="utf-8").splitlines()
    elif os.environ.get(args.auth_env):
        lines = [os.environ[args.auth_env]]
    pairs = []
    for line in (line.strip() for line in lines):
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise ValueError("auth must be user:password (one per line in an auth file)")
        pairs.append((user, password))
    return pairs


def resolve_api_key(args: AppArgs) -> str:
    """The API key from the env var, else from the key file, else "EMPTY" (servers without a key)."""
    if os.environ.get(args.api_key_env):
        return os.environ[args.api_key_env]
    if args.api_key_file and Path(args.api_key_file).is_file():
        return Path(args.api_key_file).read_text(encoding="utf-8").strip()
    return "EMPTY"


def build_parser() -> argparse.ArgumentParser:
    return dataclass_cli.build_parser(AppArgs, "python -m app")


def parse_args(argv: list[str] | None = None) -> AppArgs:
    """Defaults, then the YAML file, then the flags given; unknown YAML keys are an error."""
    return dataclass_cli.parse_config(AppArgs, argv, "python -m app").validate()
