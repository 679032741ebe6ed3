"""OpenAIEngine: the engine protocol over any OpenAI-compatible server (vLLM first; transformers serve,
Ollama, llama.cpp, cloud APIs).

Thinking comes from `delta.reasoning` (vLLM with a reasoning parser), else `delta.reasoning_content`
(older vLLM, transformers serve, DeepSeek-style APIs), else the reply is split on inline `<think>...</think>`.
Closing a stream shuts its socket down at once (even while another thread waits in a read), so the server
sees the disconnect and aborts the request without waiting for the next token. vLLM extensions (`top_k`)
reach only servers that take them (serving/openai_params.py). Model ids are sent as the server writes them
(`org/name`, `name:tag`, a path on the server), never opened here; ids given to the engine are served even
when `/v1/models` fails or omits them. Adapters are hot-loaded through vLLM's `/v1/load_lora_adapter` and
`/v1/unload_lora_adapter` (server started with VLLM_ALLOW_RUNTIME_LORA_UPDATING).

    engine = OpenAIEngine("http://127.0.0.1:8000/v1", api_key=os.environ["VLLM_API_KEY"])
    for delta in engine.stream_chat([{"role": "user", "content": "你好"}], "base", SamplingParams()):
        print(delta)
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from serving.adapters import check_adapter_name, validate_adapter
from serving.openai_errors import adapter_http_error, engine_error_from, refusal_reason
from serving.openai_params import ServerParams, notice_for
from serving.protocol import (
    BASE_MODEL_ALIAS,
    AdapterError,
    AnswerDelta,
    BadRequestError,
    ChatMessage,
    ChatRequest,
    Delta,
    EngineUnavailableError,
    FinalDelta,
    ModelInfo,
    NoticeDelta,
    ReasoningDelta,
    SamplingParams,
)
from serving.reasoning import ThinkSplitter


class OpenAIStream:
    """One streamed chat completion. Lazy: the request goes out on `start()` or the first `next()`."""

    def __init__(self, engine: OpenAIEngine, messages: Sequence[ChatMessage], model: str, params: SamplingParams):
        self._engine = engine
        self._messages = list(messages)
        self._model = model
        self._params = params
        self._response: Any = None
        self._deltas: Iterator[Delta] | None = None
        self._closed = False

    def start(self) -> OpenAIStream:
        """Send the request now (open_streams calls this for every stream at once); errors surface on next()."""
        if self._deltas is None and not self._closed:
            self._started_at = time.perf_counter()
            try:
                self._response, notice = self._engine._create_completion(self._messages, self._model, self._params)
                if self._closed:  # closed while the request was on its way
                    self.close()
                notices = [NoticeDelta(notice)] if notice else []
                self._deltas = itertools.chain(notices, self._read(self._response))
            except Exception as error:
                self._deltas = _raise(error)
        return self

    def __iter__(self) -> Iterator[Delta]:
        return self

    def __next__(self) -> Delta:
        if self._closed:
            raise StopIteration
        self.start()
        assert self._deltas is not None
        try:
            return next(self._deltas)
        except StopIteration:
            raise
        except Exception as error:
            if self._closed:
                raise StopIteration from None
            self.close()
            raise engine_error_from(error, self._engine.base_url, self._model) from error

    def close(self) -> None:
        """Stop reading and close the HTTP stream; the server sees the disconnect and aborts the request."""
        self._closed = True
        if self._response is not None:
            _shut_down_socket(self._response)
            self._response.close()

    def _read(self, response: Any) -> Iterator[Delta]:
        splitter: ThinkSplitter | None = None
        server_split = False
        reasoning_pieces = answer_pieces = 0
        first_token_s: float | None = None
        finish_reason, usage = "stop", None
        for chunk in response:
            if self._closed:
                return
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                finish_reason = choice.finish_reason or finish_reason
                reasoning, content = _reasoning_of(choice.delta), choice.delta.content or ""
                if reasoning:
                    server_split = True
                elif content and not server_split:
                    splitter = splitter or ThinkSplitter(starts_in_thinking=self._engine.starts_in_thinking)
                    reasoning, content = splitter.feed(content)
                for text, kind in ((reasoning, ReasoningDelta), (content, AnswerDelta)):
                    if text:
                        first_token_s = first_token_s or time.perf_counter() - self._started_at
                        reasoning_pieces += kind is ReasoningDelta
                        answer_pieces += kind is AnswerDelta
                        yield kind(text)
        thinking_closed = answer_pieces > 0
        if splitter is not None:
            tail_reasoning, tail_answer = splitter.finish()
            thinking_closed = not splitter.in_thinking  # a plain model that never thought is "closed" too
            if tail_reasoning:
                yield ReasoningDelta(tail_reasoning)
            if tail_answer:
                yield AnswerDelta(tail_answer)
        yield _final_delta(finish_reason, usage, reasoning_pieces, answer_pieces, first_token_s, self._started_at,
                           thinking_closed)  # fmt: skip


def _shut_down_socket(stream: Any) -> None:
    """Send the FIN now: closing a socket that another thread is reading only takes effect when that read
    returns (at the server's next chunk, which during a long prefill or a slow adapter can take seconds)."""
    with contextlib.suppress(Exception):  # no socket (already closed, or a transport without one): close() does
        network_stream = stream.response.extensions["network_stream"]
        network_stream.get_extra_info("socket").shutdown(socket.SHUT_RDWR)


def _reasoning_of(delta: Any) -> str:
    """`delta.reasoning` (vLLM >= 0.10), else `delta.reasoning_content` (older vLLM, DeepSeek-style APIs)."""
    extra = getattr(delta, "model_extra", None) or {}
    for key in ("reasoning", "reasoning_content"):
        value = getattr(delta, key, None) or extra.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _final_delta(finish_reason, usage, reasoning_pieces, answer_pieces, first_token_s, started_at, closed):
    """Token counts from the server's usage when given (pieces split by the reasoning/answer ratio)."""
    prompt_tokens = getattr(usage, "prompt_tokens", 0) or 0
    completion = getattr(usage, "completion_tokens", None)
    details = getattr(usage, "completion_tokens_details", None)
    reasoning = getattr(details, "reasoning_tokens", None) if details is not None else None
    if completion is None:
        reasoning, answer = reasoning_pieces, answer_pieces
    else:
        if reasoning is None:
            pieces = reasoning_pieces + answer_pieces
            reasoning = round(completion * reasoning_pieces / pieces) if pieces else 0
        answer = max(completion - reasoning, 0)
    return FinalDelta(
        finish_reason=finish_reason,
        prompt_tokens=prompt_tokens,
        reasoning_tokens=reasoning,
        answer_tokens=answer,
        time_to_first_token_s=first_token_s,
        total_s=time.perf_counter() - started_at,
        thinking_closed=closed,
    )


class OpenAIEngine:
    """Engine over an OpenAI-compatible HTTP server: vLLM (with LoRA hot-loading) or a cloud API."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        base_model: str | None = None,
        *,
        max_lora_rank: int | None = None,
        starts_in_thinking: bool = True,
        model_ids: Sequence[str] = (),
        strict_openai: bool = False,
        timeout_s: float = 600.0,
    ):
        import openai

        self.base_url = base_url.rstrip("/")
        self.api_key = api_key  # for a second client on the same server (evaluation's reference loss)
        self.max_lora_rank = max_lora_rank
        self.starts_in_thinking = starts_in_thinking  # inline split only: the prompt already opened <think>
        self.server = ServerParams(strict=strict_openai)  # which vLLM extensions this server takes
        self._base_model = base_model
        self.given_ids = list(dict.fromkeys(i for i in [base_model or "", *model_ids] if i))  # offered always
        self._client = openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, timeout=timeout_s)

    @property
    def base_model(self) -> str:
        """The served base model name (the first base model the server lists when not given)."""
        if self._base_model is None:
            bases = [info.name for info in self.models() if not info.is_adapter]
            if not bases:
                raise EngineUnavailableError(f"the server at {self.base_url} lists no model")
            self._base_model = bases[0]
        return self._base_model

    def models(self) -> list[ModelInfo]:
        """The given ids (base first), then what `/v1/models` lists (vLLM lists adapters with `parent` = base).

        A server whose `/v1/models` answers with an error still serves the ids given to the engine (`base_model`,
        `model_ids`).
        """
        try:
            listed = list(self._client.models.list())
        except Exception as error:
            if self.given_ids and hasattr(error, "status_code"):  # it answered, without a model list
                return [ModelInfo(model_id, is_adapter=False, listed=False) for model_id in self.given_ids]
            raise engine_error_from(error, self.base_url, None) from error
        self.server.saw_models(getattr(model, "owned_by", None) for model in listed)
        infos = {}
        for model in listed:
            extra = model.model_extra or {}
            parent, root = extra.get("parent"), extra.get("root")
            infos[model.id] = ModelInfo(
                model.id, is_adapter=bool(parent), path=Path(root) if parent and root else None
            )
        given = [infos.pop(i, ModelInfo(i, is_adapter=False, listed=False)) for i in self.given_ids]
        return given + list(infos.values())

    def stream_chat(self, messages: Sequence[ChatMessage], model: str, params: SamplingParams) -> OpenAIStream:
        """A lazy stream of deltas; bad sampling values and empty messages fail here, before any call."""
        params.validate()
        if not messages:
            raise BadRequestError("there is no message to send")
        return OpenAIStream(self, messages, self._served_name(model), params)

    def open_streams(self, requests: Sequence[ChatRequest]) -> list[OpenAIStream]:
        """Send every request at once (one side-by-side turn); each stream is then read independently."""
        streams = [self.stream_chat(r.messages, r.model, r.params) for r in requests]
        with ThreadPoolExecutor(max_workers=max(len(streams), 1)) as pool:
            list(pool.map(OpenAIStream.start, streams))  # a failed side raises on its first next(); others go on
        return streams

    def _served_name(self, model: str) -> str:
        return self.base_model if model == BASE_MODEL_ALIAS else model

    def _create_completion(
        self, messages: list[ChatMessage], model: str, params: SamplingParams
    ) -> tuple[Any, str | None]:
        """The streamed response, and a notice when this request learned that the server refuses an extension."""
        extensions = self.server.extension_body(params)
        try:
            return self._send(messages, model, params, extensions), None
        except Exception as error:
            reason = refusal_reason(error)
            dropped, first = self.server.learn(extensions, reason) if reason and extensions else ([], False)
            if not dropped:
                raise engine_error_from(error, self.base_url, model) from error
        kept = {key: value for key, value in extensions.items() if key not in dropped}
        try:
            return self._send(messages, model, params, kept), notice_for(dropped) if first else None
        except Exception as error:
            raise engine_error_from(error, self.base_url, model) from error

    def _send(self, messages: list[ChatMessage], model: str, params: SamplingParams, extra_body: dict) -> Any:
        return self._client.chat.completions.create(
            model=model,
            messages=messages,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            seed=params.seed,
            extra_body=extra_body or None,
        )

    def load_adapter(self, name: str, path: Path) -> None:
        """Validate the adapter folder, then hot-load it; a name already loaded is reloaded in place."""
        self._check_adapter(name, Path(path))
        loaded = {info.name for info in self.models() if info.is_adapter}
        body = {"lora_name": name, "lora_path": str(Path(path).resolve())}
        if name in loaded:
            body["load_inplace"] = True
        self._post("load_lora_adapter", body, f"load adapter '{name}'")

    def unload_adapter(self, name: str) -> None:
        self._post("unload_lora_adapter", {"lora_name": name}, f"unload adapter '{name}'")

    def _check_adapter(self, name: str, path: Path) -> None:
        problems = check_adapter_name(name)
        problems += validate_adapter(path, base_model_path=self._base_root(), max_rank=self.max_lora_rank)
        if problems:
            raise AdapterError(f"adapter '{name}' cannot be loaded: " + "; ".join(problems))

    def _base_root(self) -> str | None:
        """The base model's path on the server (vLLM lists it as `root`), for the base-model check."""
        try:
            listed = list(self._client.models.list())
        except Exception as error:
            raise engine_error_from(error, self.base_url, None) from error
        for model in listed:
            extra = model.model_extra or {}
            if not extra.get("parent"):
                return extra.get("root")
        return None

    def _post(self, endpoint: str, body: dict[str, Any], action: str) -> None:
        import httpx

        try:
            response = self._client.post(f"/{endpoint}", body=body, cast_to=httpx.Response)
        except Exception as error:
            raise adapter_http_error(error, action, self.base_url) from error
        if response.status_code >= 400:
            raise AdapterError(f"could not {action}: {response.text.strip()}")


def _raise(error: BaseException) -> Iterator[Delta]:
    raise error
    yield  # pragma: no cover
