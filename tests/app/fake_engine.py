"""A fake engine implementing serving.protocol.Engine, for unit tests of the app and page development.

Each model has a script: thinking pieces, answer pieces, a delay per piece, and an optional failure.
Streams record whether they were closed, so tests can check that Stop (or a closed page) cancels them.
Adapters: with `adapters_dir` the REAL serving.adapter_service resolves and validates names in that folder
(this engine only stands in for the model that holds them); `adapter_calls` records every call the app makes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from serving.adapter_service import AdapterService
from serving.adapters import AdapterRegistry
from serving.protocol import (
    BASE_MODEL_ALIAS,
    AdapterError,
    AdapterStatus,
    AnswerDelta,
    BadRequestError,
    ChatMessage,
    ChatRequest,
    Delta,
    EngineUnavailableError,
    FinalDelta,
    ModelInfo,
    ReasoningDelta,
    SamplingParams,
)


@dataclass
class Script:
    """What a model replies: thinking pieces, then answer pieces (none: thinking never closes)."""

    thinking: list[str] = field(default_factory=lambda: ["let me ", "think ", "about it"])
    answer: list[str] = field(default_factory=lambda: ["Hello", " there", "!"])
    delay_s: float = 0.0
    fail_after: int | None = None  # raise EngineUnavailableError after this many pieces
    fail_message: str = "the server went away"


class FakeStream:
    """An iterator of deltas following a Script; closing it ends the iteration at once."""

    def __init__(self, script: Script, closed_event: threading.Event) -> None:
        self.script = script
        self.closed = closed_event
        self.started_at = time.perf_counter()
        self._deltas = self._generate()

    def __iter__(self) -> Iterator[Delta]:
        return self

    def __next__(self) -> Delta:
        if self.closed.is_set():
            raise StopIteration
        return next(self._deltas)

    def close(self) -> None:
        self.closed.set()

    def _generate(self) -> Iterator[Delta]:
        pieces: list[Delta] = [ReasoningDelta(t) for t in self.script.thinking]
        pieces += [AnswerDelta(t) for t in self.script.answer]
        first_s = None
        for index, piece in enumerate(pieces):
            if self.script.fail_after is not None and index >= self.script.fail_after:
                raise EngineUnavailableError(self.script.fail_message)
            if self.closed.wait(self.script.delay_s):
                return
            first_s = first_s if first_s is not None else time.perf_counter() - self.started_at
            yield piece
        yield FinalDelta(
            finish_reason="stop" if self.script.answer else "length",
            prompt_tokens=10,
            reasoning_tokens=len(self.script.thinking),
            answer_tokens=len(self.script.answer),
            time_to_first_token_s=first_s,
            total_s=time.perf_counter() - self.started_at,
            thinking_closed=bool(self.script.answer),
        )


class FakeEngine:
    """Serves "fake-base" and any loaded adapter by following per-model scripts; records every request."""

    def __init__(
        self,
        scripts: dict[str, Script] | None = None,
        adapters: dict[str, Path] | None = None,
        adapters_dir: Path | None = None,
    ) -> None:
        self.scripts = scripts or {}
        self.loaded_adapters: dict[str, Path] = dict(adapters or {})  # served name -> folder
        self.adapter_calls: list[tuple[str, str]] = []  # (method, name) of every adapter call
        self.service = None
        if adapters_dir is not None:
            registry = AdapterRegistry(Path(adapters_dir), max_rank=None)
            self.service = AdapterService(registry, _Backend(self.loaded_adapters))
        self.requests: list[ChatRequest] = []
        self.streams: list[FakeStream] = []
        self.open_streams_calls = 0
        self._lock = threading.Lock()

    @property
    def base_model(self) -> str:
        return "fake-base"

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(self.base_model, is_adapter=False)] + [
            ModelInfo(name, is_adapter=True) for name in self.loaded_adapters
        ]

    def stream_chat(self, messages: Sequence[ChatMessage], model: str, params: SamplingParams) -> FakeStream:
        params.validate()
        name = self.base_model if model == BASE_MODEL_ALIAS else model
        if name != self.base_model and name not in self.loaded_adapters:
            raise BadRequestError(f"model '{model}' does not exist")
        with self._lock:
            self.requests.append(ChatRequest(list(messages), model, params))
            stream = FakeStream(self.scripts.get(name, Script()), threading.Event())
            self.streams.append(stream)
        return stream

    def open_streams(self, requests: Sequence[ChatRequest]) -> list[FakeStream]:
        self.open_streams_calls += 1
        return [self.stream_chat(r.messages, r.model, r.params) for r in requests]

    def adapters(self) -> list[AdapterStatus]:
        self.adapter_calls.append(("adapters", ""))
        if self.service is None:
            return [AdapterStatus(name, served_as=name, in_folder=False) for name in self.loaded_adapters]
        return self.service.statuses()

    def load_adapter(self, name: str) -> str:
        self.adapter_calls.append(("load", name))
        return self._service().load(name)

    def reload_adapter(self, name: str) -> str:
        self.adapter_calls.append(("reload", name))
        return self._service().reload(name)

    def unload_adapter(self, name: str) -> None:
        self.adapter_calls.append(("unload", name))
        if self.service is not None:
            self.service.unload(name)
        elif self.loaded_adapters.pop(name, None) is None:
            raise AdapterError(f"could not unload adapter '{name}': it is not loaded")

    def _service(self) -> AdapterService:
        if self.service is None:
            raise AdapterError("this fake engine has no adapters folder")
        return self.service


class _Backend:
    """The fake model's adapter slots (served name -> folder)."""

    def __init__(self, slots: dict[str, Path]) -> None:
        self.slots = slots

    def loaded(self) -> list[str]:
        return list(self.slots)

    def load(self, served_name: str, path: Path) -> None:
        self.slots[served_name] = path

    def unload(self, served_name: str) -> None:
        del self.slots[served_name]
