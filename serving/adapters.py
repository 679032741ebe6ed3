"""Adapter registry: list the LoRA adapters in the adapters folder and validate them before any load.

The rules are vLLM's own (so vLLM never refuses an adapter accepted here): adapter_config.json and
adapter_model.safetensors present (a pickled .bin is refused), rank <= the server's --max-lora-rank, no
`modules_to_save`, no DoRA, bias "none", LoRA only, and the base model must match. Every problem is
reported at once. Only sub-folders of the adapters folder are served: names are plain folder names (never
`base` or the served base model's name), a symlink leading outside is refused, and dot/temp folders (a training
export still being written) are never listed.

    registry = AdapterRegistry(Path("Models/adapters"), base_model_path=Path("Models/Qwen3-4B-Thinking-2507"))
    for info in registry.list():
        print(info.name, info.rank, info.eval_loss, info.problems)
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from common.file_hash import file_sha256
from common.qwen3 import QWEN3_LORA_TARGETS
from serving.protocol import AdapterError, check_adapter_name

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
PICKLE_WEIGHTS = ("adapter_model.bin", "adapter_model.pt")
METRICS_FILE = "metrics.json"
DEFAULT_MAX_RANK = 8
VLLM_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the values vLLM accepts for --max-lora-rank
VLLM_QWEN3_TARGETS = frozenset(QWEN3_LORA_TARGETS)  # the Qwen3 linear layers vLLM puts LoRA on


@dataclass(frozen=True)
class AdapterInfo:
    """One adapter folder and what we know about it; `problems` empty means it can be loaded."""

    name: str
    path: Path
    base_model: str | None = None
    rank: int | None = None
    created: datetime | None = None
    eval_loss: float | None = None
    problems: list[str] = field(default_factory=list)
    thinking: str | None = None  # how training treated the thinking ("empty", "distill/blind", ...), if recorded

    @property
    def valid(self) -> bool:
        return not self.problems


def weights_sha256(folder: Path) -> str:
    """The SHA-256 of an adapter folder's weights file (what a served name answers with); "" when it has none."""
    weights = Path(folder) / WEIGHTS_FILE
    return file_sha256(weights) if weights.is_file() else ""


def read_adapter_config(path: Path) -> tuple[dict | None, list[str]]:
    """The parsed adapter_config.json, or None with the reason it cannot be read."""
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        return None, [f"{CONFIG_FILE} is missing"]
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, [f"{CONFIG_FILE} is not valid JSON ({error})"]
    if not isinstance(config, dict):
        return None, [f"{CONFIG_FILE} must hold a JSON object"]
    return config, []


def safetensors_shapes(path: Path) -> dict[str, list[int]]:
    """Tensor name -> shape from a safetensors header, without loading the weights (ValueError if broken)."""
    with path.open("rb") as file:
        raw_length = file.read(8)
        if len(raw_length) != 8:
            raise ValueError("file too short")
        (length,) = struct.unpack("<Q", raw_length)
        if length > 100_000_000:
            raise ValueError("header too large")
        header = json.loads(file.read(length))
    return {name: entry["shape"] for name, entry in header.items() if name != "__metadata__"}


def _config_problems(config: dict, max_rank: int | None) -> list[str]:
    problems = []
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        problems.append(f"only LoRA adapters can be served, this one is {config.get('peft_type')}")
    rank = config.get("r")
    ranks = [rank, *(config.get("rank_pattern") or {}).values()]
    if not isinstance(rank, int) or rank < 1:
        problems.append(f"rank r must be a positive integer, got {rank!r}")
    elif max_rank is not None and max(r for r in ranks if isinstance(r, int)) > max_rank:
        problems.append(f"rank {max(r for r in ranks if isinstance(r, int))} is above the server's limit {max_rank}")
    if config.get("modules_to_save"):
        problems.append(f"modules_to_save {config['modules_to_save']} is set; vLLM only serves pure LoRA weights")
    if config.get("use_dora"):
        problems.append("DoRA (use_dora) is not supported by vLLM")
    if config.get("bias", "none") != "none":
        problems.append(f"bias must be 'none', got {config.get('bias')!r}")
    targets = config.get("target_modules")
    if isinstance(targets, list) and not set(targets) <= VLLM_QWEN3_TARGETS:
        problems.append(f"target modules {sorted(set(targets) - VLLM_QWEN3_TARGETS)} cannot be served by vLLM")
    return problems


def _weights_problems(path: Path, base_config: dict | None) -> list[str]:
    weights = path / WEIGHTS_FILE
    pickles = [name for name in PICKLE_WEIGHTS if (path / name).exists()]
    if not weights.is_file():
        found = f" (found {', '.join(pickles)}: pickled weights are refused, save with safetensors)" if pickles else ""
        return [f"{WEIGHTS_FILE} is missing{found}"]
    problems = [f"{name} is present: pickled weights are refused, keep only {WEIGHTS_FILE}" for name in pickles]
    try:
        shapes = safetensors_shapes(weights)
    except (OSError, ValueError, KeyError, TypeError) as error:
        return [*problems, f"{WEIGHTS_FILE} is not a readable safetensors file ({error})"]
    if not shapes:
        problems.append(f"{WEIGHTS_FILE} holds no tensors")
    hidden = (base_config or {}).get("hidden_size")
    q_proj_a = [shape for name, shape in shapes.items() if "q_proj.lora_A" in name]
    if hidden and q_proj_a and q_proj_a[0][-1] != hidden:
        problems.append(f"weights are for hidden size {q_proj_a[0][-1]}, the base model has {hidden}")
    return problems


def _base_problems(config: dict, base_model_path: Path | str | None) -> tuple[list[str], dict | None]:
    """The adapter's base_model_name_or_path must name the served base (same folder/repo name)."""
    if base_model_path is None:
        return [], None
    base_config = None
    config_json = Path(base_model_path) / "config.json"
    if config_json.is_file():
        try:
            base_config = json.loads(config_json.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            base_config = None
    trained_on = config.get("base_model_name_or_path")
    if not trained_on:
        return ["adapter_config.json does not say which base model it was trained on"], base_config
    if Path(str(trained_on)).name.lower() != Path(str(base_model_path)).name.lower():
        return [f"it was trained on '{trained_on}', the server runs '{base_model_path}'"], base_config
    return [], base_config


def validate_adapter(
    path: Path, base_model_path: Path | str | None = None, max_rank: int | None = DEFAULT_MAX_RANK
) -> list[str]:
    """Every reason this folder cannot be served (empty list when it can). None skips that check."""
    path = Path(path)
    if not path.is_dir():
        return [f"{path} is not a folder"]
    config, problems = read_adapter_config(path)
    base_config = None
    if config is not None:
        problems += _config_problems(config, max_rank)
        base_problems, base_config = _base_problems(config, base_model_path)
        problems += base_problems
    return problems + _weights_problems(path, base_config)


def _metrics(path: Path) -> dict:
    """The training report (metrics.json) of an adapter; {} when there is none or it is unreadable."""
    try:
        metrics = json.loads((path / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return metrics if isinstance(metrics, dict) else {}


def _thinking_mode(metrics: dict) -> str | None:
    """How the adapter's training treated the thinking, as training recorded it (`thinking_mode`)."""
    mode = metrics.get("thinking_mode")
    return mode if isinstance(mode, str) and mode else None


def _eval_loss(metrics: dict) -> float | None:
    """The final eval loss from the training report, when there is one."""
    for key in ("eval_loss", "final_eval_loss", "best_eval_loss"):
        value = metrics.get(key)
        if isinstance(value, int | float):
            return float(value)
    history = metrics.get("log_history") or metrics.get("eval") or []
    losses = [row["eval_loss"] for row in history if isinstance(row, dict) and "eval_loss" in row]
    return float(losses[-1]) if losses else None


class AdapterRegistry:
    """The allow-listed adapters folder: one sub-folder per adapter, `Models/adapters/<name>/`."""

    def __init__(
        self,
        adapters_dir: Path,
        base_model_path: Path | str | None = None,
        max_rank: int | None = DEFAULT_MAX_RANK,
        served_base: str | None = None,
    ):
        """`served_base`: the name the base model is served under, which no adapter may take (nor `base`)."""
        self.adapters_dir = Path(adapters_dir)
        self.base_model_path = base_model_path
        self.max_rank = max_rank
        self.served_base = served_base

    def resolve(self, name: str) -> Path:
        """The folder of adapter `name`, refusing names of the base model and names and symlinks that lead outside
        the adapters folder."""
        problems = check_adapter_name(name, self.served_base)
        if problems:
            raise AdapterError("; ".join(problems))
        root = self.adapters_dir.resolve()
        try:
            path = (root / name).resolve()
        except (OSError, RuntimeError) as error:  # Python 3.11 raises RuntimeError on a symlink loop
            raise AdapterError(f"adapter '{name}' cannot be resolved ({error}); refused") from error
        if path.parent != root:
            raise AdapterError(f"adapter '{name}' points outside the adapters folder {root}; refused")
        return path

    def info(self, name: str) -> AdapterInfo:
        """Metadata and problems of one adapter (a bad name or outside symlink is a problem, not a crash)."""
        try:
            path = self.resolve(name)
        except AdapterError as error:
            return AdapterInfo(name=name, path=self.adapters_dir / name, problems=[str(error)])
        try:
            return self._read_info(name, path)
        except OSError as error:  # e.g. another user's folder: a problem of this adapter, the others still list
            return AdapterInfo(name=name, path=path, problems=[f"its folder cannot be read ({error})"])

    def _read_info(self, name: str, path: Path) -> AdapterInfo:
        config, _ = read_adapter_config(path)
        config = config or {}
        weights = path / WEIGHTS_FILE
        created = datetime.fromtimestamp(weights.stat().st_mtime, tz=UTC) if weights.is_file() else None
        rank = config.get("r") if isinstance(config.get("r"), int) else None
        problems = validate_adapter(path, self.base_model_path, self.max_rank)
        base = config.get("base_model_name_or_path")
        metrics = _metrics(path)
        return AdapterInfo(name, path, base, rank, created, _eval_loss(metrics), problems, _thinking_mode(metrics))

    def list(self) -> list[AdapterInfo]:
        """Every adapter folder, sorted by name; dot/temp folders (exports in progress) are skipped."""
        if not self.adapters_dir.is_dir():
            return []
        names = sorted(
            entry.name
            for entry in self.adapters_dir.iterdir()
            if entry.is_dir() and not entry.name.startswith((".", "_", "tmp")) and not entry.name.endswith(".tmp")
        )
        return [self.info(name) for name in names]

    def valid(self) -> list[AdapterInfo]:
        return [info for info in self.list() if info.valid]

    def largest_rank(self, default: int = DEFAULT_MAX_RANK) -> int:
        """The rank the server must allow to serve every adapter here (at least `default`)."""
        ranks = [info.rank for info in self.list() if info.rank and not _broken_beyond_rank(info)]
        needed = max([default, *ranks])
        return vllm_rank_for(needed) or needed


def vllm_rank_for(rank: int) -> int | None:
    """The smallest --max-lora-rank vLLM accepts (VLLM_RANKS) that serves `rank`; None above the largest."""
    return next((allowed for allowed in VLLM_RANKS if allowed >= rank), None)


def _broken_beyond_rank(info: AdapterInfo) -> bool:
    """True when the adapter is broken for a reason other than its rank (a higher limit would not help)."""
    return any("above the server's limit" not in problem for problem in info.problems)
