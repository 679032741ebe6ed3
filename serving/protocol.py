"""The engine protocol: the one contract between the app and every engine.

The app depends on this module only. An engine turns chat messages into a stream of typed deltas:
thinking pieces, answer pieces, and one final record with usage and timings (an OpenAI-compatible server
may add a notice first, e.g. that it does not take a setting). Thinking and answer are split inside the
engine, never in the UI.

    stream = engine.stream_chat(messages, "base", SamplingParams(max_tokens=64))
    for delta in stream:
        ...
    stream.close()  # closing early cancels generation where it runs (server or in-process)

`open_streams` starts several requests at once (one side-by-side turn): engines that can batch them
(LocalEngine) run them as one batched generate; OpenAIEngine sends them concurrently.

Adapters are handled BY NAME only: `adapters()` lists what the serving side knows (its adapters folder and
what is loaded), `load_adapter(name)` / `reload_adapter(name)` return the name the adapter is served under,
`unload_adapter(name)`. The serving side resolves the name in its own adapters folder; the caller never sends
a path. A reload is served under a fresh name (`huanhuan@2`, `@3`, ...), never in place (vLLM issue 42125).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

BASE_MODEL_ALIAS = "base"
_FOLDER_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
ADAPTER_NAME_PATTERN = re.compile(rf"^{_FOLDER_NAME}$")  # an adapter folder name
SERVED_NAME_PATTERN = re.compile(rf"^(?P<folder>{_FOLDER_NAME})(@(?P<generation>[1-9][0-9]{{0,8}}))?$")  # `x@2`
MODEL_ID_PATTERN = re.compile(r"^[A-Za-z0-9/~][A-Za-z0-9._:@/+~-]{0,255}$")  # any model id a server may write


class ChatMessage(TypedDict):
    """One chat message as the OpenAI API has it (assistant turns carry their answer, never thinking)."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class ReasoningDelta:
    """A piece of the model's thinking (between `<think>` and `</think>`)."""

    text: str


@dataclass(frozen=True)
class AnswerDelta:
    """A piece of the model's answer (after `</think>`)."""

    text: str


@dataclass(frozen=True)
class FinalDelta:
    """The last delta of every stream that ends normally: usage, timings and how it ended."""

    finish_reason: str  # "stop", "length", "cancelled", ...
    prompt_tokens: int = 0
    reasoning_tokens: int = 0
    answer_tokens: int = 0
    time_to_first_token_s: float | None = None
    total_s: float = 0.0
    thinking_closed: bool = True  # False: the reply never emitted `</think>`, all of it is thinking

    @property
    def completion_tokens(self) -> int:
        return self.reasoning_tokens + self.answer_tokens

    @property
    def tokens_per_s(self) -> float:
        generating_s = self.total_s - (self.time_to_first_token_s or 0.0)
        if self.completion_tokens <= 1 or generating_s <= 0:
            return 0.0
        return (self.completion_tokens - 1) / generating_s


@dataclass(frozen=True)
class NoticeDelta:
    """A note for the user about how the request was served (e.g. a setting this server does not take)."""

    text: str


Delta = ReasoningDelta | AnswerDelta | NoticeDelta | FinalDelta


class DeltaStream(Protocol):
    """An iterator of deltas that can be closed early; closing cancels the generation behind it."""

    def __iter__(self) -> Iterator[Delta]: ...

    def __next__(self) -> Delta: ...

    def close(self) -> None: ...


class EngineError(RuntimeError):
    """Any failure an engine reports; its message is written for the user and shown as is."""


class BadRequestError(EngineError):
    """The request itself is wrong (prompt too long, bad sampling values, unknown model)."""


class EngineUnavailableError(EngineError):
    """The engine is not ready, has died, or cannot be reached."""


class AdapterError(EngineError):
    """An adapter cannot be loaded or unloaded; the message lists every reason."""


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings shared by both sides of a turn (same seed on both sides for a fair comparison)."""

    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = 20
    max_tokens: int = 512
    seed: int | None = 0

    def problems(self) -> list[str]:
        """Every reason these values cannot be sent, as user-facing sentences (empty when valid)."""
        found = []
        if not _finite(self.temperature) or not 0.0 <= self.temperature <= 2.0:
            found.append(f"temperature must be between 0 and 2, got {self.temperature}")
        if not _finite(self.top_p) or not 0.0 < self.top_p <= 1.0:
            found.append(f"top_p must be in (0, 1], got {self.top_p}")
        if not isinstance(self.top_k, int) or (self.top_k < 1 and self.top_k != -1):
            found.append(f"top_k must be -1 (off) or a positive integer, got {self.top_k}")
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            found.append(f"max new tokens must be a positive integer, got {self.max_tokens}")
        if self.seed is not None and not isinstance(self.seed, int):
            found.append(f"seed must be an integer, got {self.seed!r}")
        return found

    def validate(self) -> SamplingParams:
        problems = self.problems()
        if problems:
            raise BadRequestError("; ".join(problems))
        return self


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


@dataclass(frozen=True)
class ChatRequest:
    """One stream to open: the messages, the model (base alias or adapter name) and the sampling."""

    messages: Sequence[ChatMessage]
    model: str
    params: SamplingParams = field(default_factory=SamplingParams)


@dataclass(frozen=True)
class ModelInfo:
    """A model an engine can serve now: the base, or a loaded adapter on top of it."""

    name: str
    is_adapter: bool
    path: Path | None = None
    listed: bool = True  # False: an id given to the engine that the server itself does not list


def check_adapter_name(name: object, served_base: str | None = None) -> list[str]:
    """An adapter name is a plain folder name: no path separators, no `..`, no leading dot, and not a name of the
    base model (`base`, or `served_base` when given, in any letter case): a request for it would get the base
    model, not the adapter. Empty when valid."""
    if not isinstance(name, str) or not ADAPTER_NAME_PATTERN.match(name) or ".." in name:
        return [f"'{name}' is not a valid adapter name (use letters, digits, '.', '_' or '-', at most 64)"]
    base_names = {BASE_MODEL_ALIAS, served_base.lower()} if served_base else {BASE_MODEL_ALIAS}
    if name.lower() in base_names:
        return [
            f"'{name}' is the base model's name, so the adapter would never be used (the base model answers "
            f"for it); give the adapter (its folder) another name, e.g. '{name}-lora'"
        ]
    return []


def folder_of(served_name: str) -> str | None:
    """The adapters-folder name behind a served name (`huanhuan@2` -> `huanhuan`); None when it is not one."""
    match = SERVED_NAME_PATTERN.match(served_name) if isinstance(served_name, str) else None
    if match is None or ".." in match["folder"]:
        return None
    return match["folder"]


@dataclass(frozen=True)
class AdapterStatus:
    """One adapter as the serving side knows it: its folder name, the name it is served under when loaded,
    what training and evaluation recorded, and every reason it cannot be loaded (`problems`)."""

    name: str
    served_as: str | None = None  # the served model name (`name` or `name@N`); None when not loaded
    rank: int | None = None
    base_model: str | None = None
    created: str = ""  # "YYYY-MM-DD HH:MM" (UTC) of the weights file
    eval_loss: float | None = None
    evaluation: str = ""  # the evaluation headline (`python -m evaluation`), "" when never evaluated
    thinking: str = ""  # how training treated the thinking ("empty", "distill/blind", ...), "" when unknown
    problems: tuple[str, ...] = ()
    in_folder: bool = True  # False: loaded on the server but not from its adapters folder
    weights_sha256: str = ""  # of the weights file the served name was loaded from; "" when not loaded or unknown
    changed_on_disk: bool = False  # the weights file changed since the served name was loaded: Reload serves it

    @property
    def loaded(self) -> bool:
        return self.served_as is not None

    def to_json(self) -> dict:
        return {**{key: getattr(self, key) for key in self.__dataclass_fields__}, "problems": list(self.problems)}

    @classmethod
    def from_json(cls, data: dict) -> AdapterStatus:
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        return cls(**{**known, "problems": tuple(known.get("problems") or ())})


def server_url(engine: object) -> str | None:
    """The `/v1` URL of the server an engine talks to (OpenAIEngine); None for an in-process engine."""
    return getattr(engine, "base_url", None)


def served_weights(engine: Any, served_name: str) -> str:
    """The SHA-256 of the weights adapter `served_name` answers with (AdapterStatus.weights_sha256); "" for the
    base, a name not served, a server that does not say, or an engine that cannot list its adapters now."""
    return served_weights_by_name(engine).get(served_name, "")


def served_weights_by_name(engine: Any) -> dict[str, str]:
    """Served name -> SHA-256 of its weights, for every adapter whose server says (one call to the engine)."""
    try:
        statuses = engine.adapters()
    except Exception:  # best effort (a server answering something else than JSON too): never fails a turn or a vote
        return {}
    return {
        status.served_as: status.weights_sha256 for status in statuses if status.served_as and status.weights_sha256
    }


@runtime_checkable
class Engine(Protocol):
    """What the app needs from an engine. Implementations: OpenAIEngine, LocalEngine."""

    @property
    def base_model(self) -> str:
        """The name under which the base model is served."""
        ...

    def models(self) -> list[ModelInfo]: ...

    def stream_chat(self, messages: Sequence[ChatMessage], model: str, params: SamplingParams) -> DeltaStream: ...

    def open_streams(self, requests: Sequence[ChatRequest]) -> list[DeltaStream]: ...

    def adapters(self) -> list[AdapterStatus]:
        """The adapters the serving side knows: its adapters folder (with metadata) and what is loaded."""
        ...

    def load_adapter(self, name: str) -> str:
        """Load adapter `name` from the serving side's adapters folder; returns the name it is served under
        (an adapter already loaded is left as it is). AdapterError lists every reason it cannot load."""
        ...

    def unload_adapter(self, name: str) -> None:
        """Unload a served name (`huanhuan@2`), or every served name of folder `name`."""
        ...

    def reload_adapter(self, name: str) -> str:
        """Load folder `name` again under a fresh served name and unload the old one; returns the new name."""
        ...
