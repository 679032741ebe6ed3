"""LocalEngine: the engine protocol in-process with transformers + peft, for machines where vLLM cannot run.

A side-by-side turn (base row + adapter row) is ONE batched `generate` with per-row `adapter_names`
(`"__base__"` for the base), left padding, one streamer that routes each row's tokens to its own stream,
and a stopping criterion that ends the rows whose stream was closed. Thinking and answer are split on the
`</think>` token id; a row that ends early is reported finished at that step. Adapters are served by name
from `adapters_dir` (serving.adapter_service: validated once with vLLM's rules, a reload under a fresh
name). Loading, adapter changes and every generate run in order on one model thread (`serving.model_thread`),
as a plain `generate` in a script runs on one thread; `close()` (also called at interpreter exit) cancels what
runs and ends that thread.

    engine = LocalEngine(Path(".cache/tiny-qwen3"), adapters_dir=Path("Models/adapters"))
    engine.load_adapter("huanhuan")
    base, lora = engine.open_streams([ChatRequest(messages, "base"), ChatRequest(messages, "huanhuan")])
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

from serving.adapter_service import AdapterService
from serving.adapters import AdapterRegistry, validate_adapter, weights_sha256
from serving.local_streaming import BatchRowStreamer, LocalStream, RowState, cancel_rows_criterion
from serving.model_thread import ModelThread
from serving.protocol import (
    BASE_MODEL_ALIAS,
    AdapterError,
    AdapterStatus,
    BadRequestError,
    ChatMessage,
    ChatRequest,
    EngineError,
    ModelInfo,
    SamplingParams,
    check_adapter_name,
)

PEFT_BASE_NAME = "__base__"


class LocalEngine:
    """transformers + peft in one process; one model thread loads, changes adapters and generates, in order."""

    def __init__(
        self,
        model_path: Path | str,
        adapters: dict[str, Path] | None = None,
        *,
        adapters_dir: Path | str | None = None,
        dtype: str = "auto",
        device: str = "auto",
    ):
        """`adapters_dir`: the folder `load_adapter(name)` serves from; `adapters`: name -> folder loaded at start
        (trusted callers). device/dtype "auto": a usable GPU in bf16 (fp16 where bf16 is only emulated), else CPU."""
        self._adapters: dict[str, Path] = {}
        self._given_weights: dict[str, str] = {}  # load_adapter_path's names -> SHA-256 of the weights loaded
        self._service: AdapterService | None = None
        self._running: list[RowState] = []  # rows of the turns queued or generating, cancelled by close()
        self._running_lock = threading.Lock()
        self._worker = ModelThread("local-engine")  # loads, adapter changes and generates all run there
        try:
            self._worker.call(self._load, model_path, dtype, device)
        except BaseException:
            self._worker.stop()
            raise
        atexit.register(_close_at_exit, weakref.ref(self))
        if adapters_dir is not None:
            registry = AdapterRegistry(
                Path(adapters_dir), base_model_path=self.model_path, max_rank=None, served_base=self.base_model
            )
            self._service = AdapterService(registry, self)
        for name, path in (adapters or {}).items():
            self.load_adapter_path(name, path)

    def _load(self, model_path: Path | str, dtype: str, device: str) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device, dtype = resolve_placement(device, dtype)
        self.model_path = Path(model_path)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=dtype).to(device).eval()
        eos = self.model.generation_config.eos_token_id
        self._eos_ids = frozenset(eos if isinstance(eos, list) else [eos])
        self.max_context = int(getattr(self.model.config, "max_position_embeddings", 0) or 0) or None

    @property
    def base_model(self) -> str:
        return self.model_path.name

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(self.base_model, is_adapter=False, path=self.model_path)] + [
            ModelInfo(name, is_adapter=True, path=path) for name, path in self._adapters.items()
        ]

    def _adapter_of(self, model: str) -> str:
        if model in (BASE_MODEL_ALIAS, self.base_model):
            return PEFT_BASE_NAME
        if model not in self._adapters:
            known = ", ".join(info.name for info in self.models())
            raise BadRequestError(f"unknown model '{model}' (not loaded); available: {known}")
        return model

    def stream_chat(self, messages: Sequence[ChatMessage], model: str, params: SamplingParams) -> LocalStream:
        return self.open_streams([ChatRequest(messages, model, params)])[0]

    def open_streams(self, requests: Sequence[ChatRequest]) -> list[LocalStream]:
        """Start every request now; requests with the same sampling share ONE batched generate."""
        for request in requests:
            request.params.validate()
            if not request.messages:
                raise BadRequestError("there is no message to send")
        adapter_names = [self._adapter_of(request.model) for request in requests]
        prompts = [self._prompt_ids(request) for request in requests]
        started = time.perf_counter()
        rows = [RowState(started, self._eos_ids, prompt_tokens=len(ids)) for ids in prompts]
        groups: dict[SamplingParams, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(request.params, []).append(index)
        batches = [(params, indexes) for params, indexes in groups.items()]
        with self._running_lock:
            self._running.extend(rows)
        done = self._worker.submit(self._run_batches, batches, prompts, adapter_names, rows)
        if done.done() and done.exception() is not None:  # the engine was closed: nothing will run
            for row in rows:
                row.fail(EngineError(f"the local engine is closed: {done.exception()}"))
        return [LocalStream(row) for row in rows]

    def run_on_model_thread(self, fn, *args):
        """Run `fn(*args)` on the model thread, after what is queued there, and return its result (the
        benchmarks time a plain `generate` of `self.model` there, under the same threading as the engine)."""
        return self._worker.call(fn, *args)

    def close(self, timeout_s: float = 60.0) -> None:
        """Cancel every queued or running turn and end the model thread (also run at interpreter exit: a
        generate still inside torch while Python shuts down aborts the process)."""
        with self._running_lock:
            rows = list(self._running)
        for row in rows:
            row.cancelled.set()
        self._worker.stop(timeout_s)

    def _prompt_ids(self, request: ChatRequest) -> list[int]:
        text = self.tokenizer.apply_chat_template(list(request.messages), tokenize=False, add_generation_prompt=True)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if self.max_context and request.params.max_tokens >= self.max_context:
            raise BadRequestError(
                f"max new tokens is too large: {request.params.max_tokens} is not below the model's context "
                f"length {self.max_context}. Lower max new tokens."
            )
        if self.max_context and len(ids) + request.params.max_tokens > self.max_context:
            raise BadRequestError(
                f"the conversation is too long for the model's context: the prompt has {len(ids)} tokens and "
                f"max new tokens is {request.params.max_tokens}, together above the limit of {self.max_context}. "
                "Clear the chat, shorten it, or lower max new tokens."
            )
        return ids

    def _run_batches(self, batches, prompts, adapter_names, rows: list[RowState]) -> None:
        """On the model thread: each group of requests with the same sampling is one batched generate."""
        try:
            self._run_batches_in_order(batches, prompts, adapter_names, rows)
        finally:
            with self._running_lock:
                self._running = [row for row in self._running if all(row is not done for done in rows)]

    def _run_batches_in_order(self, batches, prompts, adapter_names, rows: list[RowState]) -> None:
        for params, indexes in batches:
            rows_here = [rows[i] for i in indexes]
            if all(row.cancelled.is_set() for row in rows_here):  # closed before its turn came
                for row in rows_here:
                    row.finish(self.tokenizer, "cancelled")
                continue
            gone = sorted({adapter_names[i] for i in indexes} - {PEFT_BASE_NAME, *self._adapters})
            if gone:  # unloaded between open_streams and now
                for row in rows_here:
                    row.fail(BadRequestError(f"unknown model '{gone[0]}': it was unloaded before the reply started"))
                continue
            try:
                self._generate(params, [prompts[i] for i in indexes], [adapter_names[i] for i in indexes], rows_here)
            except Exception as error:  # the worker thread must report every failure to its streams
                failure = error if isinstance(error, EngineError) else EngineError(f"local generation failed: {error}")
                for i in indexes:
                    rows[i].fail(failure)

    def _generate(self, params: SamplingParams, prompts, adapter_names, rows: list[RowState]) -> None:
        import torch

        batch = self.tokenizer.pad({"input_ids": prompts}, padding=True, return_tensors="pt").to(self.model.device)
        kwargs = _sampling_kwargs(params)
        if self._adapters:
            kwargs["adapter_names"] = adapter_names
        if params.seed is not None:
            torch.manual_seed(params.seed)
        with torch.inference_mode():
            self.model.generate(
                **batch,
                **kwargs,
                max_new_tokens=params.max_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                streamer=BatchRowStreamer(rows, self.tokenizer),
                stopping_criteria=[cancel_rows_criterion(rows)],
            )
        for row in rows:
            row.finish(self.tokenizer, "length")

    def adapters(self) -> list[AdapterStatus]:
        """The adapters folder (with metadata, and the served name of each loaded one), then the adapters given
        to the constructor from elsewhere."""
        if self._service is None:
            weights = self._given_weights
            return [AdapterStatus(name, served_as=name, in_folder=False, weights_sha256=weights.get(name, ""))
                    for name in self._adapters]  # fmt: skip
        return self._service.statuses()

    def load_adapter(self, name: str) -> str:
        """Load adapter `name` from the adapters folder (validated once) between generations; its served name."""
        return self._folder_service().load(name)

    def reload_adapter(self, name: str) -> str:
        """Load folder `name` again under a fresh served name (`name@2`, ...), then unload the old one."""
        return self._folder_service().reload(name)

    def unload_adapter(self, name: str) -> None:
        if self._service is None:
            self._worker.call(self._unload_adapter, name)
        else:
            self._service.unload(name)

    def load_adapter_path(self, name: str, path: Path) -> None:
        """Trusted in-process callers only (the constructor's `adapters`, the terminal chat): validate a folder
        anywhere on disk and load it under `name` (a name already loaded is replaced)."""
        path = Path(path)
        problems = check_adapter_name(name, self.base_model)
        problems += validate_adapter(path, base_model_path=self.model_path, max_rank=None)
        if problems:
            raise AdapterError(f"adapter '{name}' cannot be loaded: " + "; ".join(problems))
        digest = weights_sha256(path)
        self._worker.call(self._load_adapter, name, path)
        self._given_weights[name] = digest

    def _folder_service(self) -> AdapterService:
        if self._service is None:
            raise AdapterError("this local engine has no adapters folder; start it with one (--adapters-dir)")
        return self._service

    # AdapterBackend for the service: the peft model, changed on the model thread between generations
    def loaded(self) -> list[str]:
        return list(self._adapters)

    def load(self, served_name: str, path: Path) -> None:
        self._worker.call(self._load_adapter, served_name, path)

    def unload(self, served_name: str) -> None:
        self._worker.call(self._unload_adapter, served_name)

    def _load_adapter(self, name: str, path: Path) -> None:
        from peft import PeftModel

        try:
            if name in self._adapters:
                self._remove_adapter(name)
            if not isinstance(self.model, PeftModel):
                self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name).eval()
            else:
                self.model.load_adapter(str(path), adapter_name=name)
        except Exception as error:
            raise AdapterError(f"could not load adapter '{name}' from {path}: {error}") from error
        self._adapters[name] = path

    def _unload_adapter(self, name: str) -> None:
        if name not in self._adapters:
            raise AdapterError(f"could not unload adapter '{name}': it is not loaded")
        self._remove_adapter(name)

    def _remove_adapter(self, name: str) -> None:
        """Delete one adapter; removing the last one unwraps peft and leaves the plain base model."""
        if len(self._adapters) == 1:
            self.model = self.model.unload()
        else:
            self.model.delete_adapter(name)
            self.model.set_adapter(next(other for other in self._adapters if other != name))
        del self._adapters[name]


def resolve_placement(device: str, dtype: str) -> tuple[str, str]:
    """Fill in "auto" device/dtype from what this machine's GPU can do (common.devices)."""
    if device != "auto" and dtype != "auto":
        return device, dtype
    from common.devices import inference_placement, probe

    auto_device, auto_dtype = inference_placement(probe())
    device = auto_device if device == "auto" else device
    if dtype == "auto" and device == auto_device:
        dtype = auto_dtype
    return device, dtype


def _close_at_exit(engine_ref: weakref.ref) -> None:
    engine = engine_ref()
    if engine is not None:
        engine.close()


def _sampling_kwargs(params: SamplingParams) -> dict:
    """generate() sampling arguments; temperature 0 is greedy decoding."""
    if params.temperature == 0:
        return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    top_k = params.top_k if params.top_k > 0 else None
    return {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p, "top_k": top_k}
