"""What `build_demo(engine, settings)` needs besides the engine: defaults and limits of the page."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.personas import DEFAULT_PERSONA


@dataclass
class AppSettings:
    """Page defaults and limits (the CLI's AppArgs fills these; tests build them directly)."""

    adapters_dir: Path | None = None  # the only folder adapters can be loaded from on the page
    default_adapter: str = "huanhuan"  # right side's default model when loaded
    base_model_path: str | None = None  # for the adapter panel's base-model check (None: skip it)
    max_lora_rank: int = 8
    persona: str = DEFAULT_PERSONA
    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = 20
    max_new_tokens: int = 512
    max_new_tokens_limit: int = 8192
    seed: int = 0
    max_message_chars: int = 16000
    concurrency_limit: int = 8  # turns streaming at once (each holds two engine streams)
    max_queue_size: int = 64  # waiting events beyond this are refused with "queue full"
    export_dir: Path | None = None  # where exports are written (None: a temp dir)
    votes_dir: Path = Path("data/votes")  # blind votes (votes.jsonl), kept across restarts
    title: str = "Qwen3 Thinking: base vs Zhen Huan LoRA"
