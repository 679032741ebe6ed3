"""OpenAIEngine: the engine protocol over any OpenAI-compatible server (vLLM first; transformers serve,
Ollama, llama.cpp, cloud APIs).

Thinking comes from `delta.reasoning` (vLLM with a reasoning parser), else `delta.reasoning_content`
(older vLLM, transformers serve, DeepSeek-style APIs), else the reply is split on inline `<think>...</think>`.
Closing a stream shuts its socket down at once (even while another thread waits in a read), so the server
sees the disconnect and aborts the request without waiting for the next token; a stream read to its end leaves
its pooled connection to the next request. vLLM extensions (`top_k`) reach only servers that take them
(serving/openai_params.py). Model ids are sent as the server writes them
(`org/name`, `name:tag`, a path on the server), never opened here; ids given to the engine are served even
when `/v1/models` fails or omits them. Adapters are listed, loaded, reloaded and unloaded BY NAME through the
`/v1/adapters` routes our vLLM server runs (serving/adapter_routes.py), one request per action; a server
without them (a plain vLLM, another OpenAI server) lists its loaded adapters from `/v1/models` and refuses
load/unload with a one-line reason. A refused API key (HTTP 401/403) or a failing server (5xx) is reported as
such, never taken for a server without those routes, nor for an empty model list.

    engine = OpenAIEngine("http://127.0.0.1:8000/v1", api_key=os.environ["VLLM_API_KEY"])
    for delta in engine.stream_chat([{"role": "user", "content": "你好"}], "base", SamplingParams()):
        print(delta)
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

from serving.adapter_routes import REGISTRY_HEADER
from serving.adapters import validate_adapter
from serving.http_clients import adapter_client, once_more_if_broken, openai_client
from serving.openai_errors import KEY_HINT, engine_error_from, error_reason, refusal_reason
from serving.openai_params import ServerParams, notice_for
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
    NoticeDelta,
    ReasoningDelta,
    SamplingParams,
    check_adapter_name,
)
from serving.reasoning import ReplySplit, reasoning_of

KEY_REFUSED = (401, 403)  # HTTP statuses of a missing or wrong API key
NOT_MANAGED = (
    "this server does not manage adapters by name; cannot {action} at {url}: start it with `python -m serving` "
    "(its adapters folder is then served by name), or load the adapter on that server yourself"
)


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
        self._reading = threading.Lock()  # held by the thread inside a read of the response

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
            self._release()
            raise StopIteration
        self.start()
        assert self._deltas is not None
        try:
            with self._reading:
                return next(self._deltas)
        except StopIteration:
            raise
        except Exception as error:
            if self._closed:
                raise StopIteration from None
            self.close()
            raise engine_error_from(error, self._engine.base_url, self._model) from error
        finally:
            if self._closed:
                self._release()

    def close(self) -> None:
        """Stop reading and close the HTTP stream; the server sees the disconnect and aborts the request.

        Safe from any thread. A reply still arriving has its socket shut down, which wakes a reader blocked in
        a read; the socket itself is closed by whichever thread holds no read, so a read never starts on a
        closed (and perhaps reused) file descriptor. A reply already read to its end gave its connection back
        to the client's pool: that socket is left alone, as another request may be using it.
        """
        self._closed = True
        if self._response is not None:
            _shut_down_socket(self._response)
            self._release()

    def _release(self) -> None:
        """Close the response now unless a reader is inside a read; that reader closes it when the read returns."""
        if self._response is not None and self._reading.acquire(blocking=False):
            try:
                self._response.close()
            finally:
                self._reading.release()

    def _read(self, response: Any) -> Iterator[Delta]:
        split = ReplySplit(starts_in_thinking=self._engine.starts_in_thinking)
        pieces = {ReasoningDelta: 0, AnswerDelta: 0}
        first_token_s: float | None = None
        finish_reason, usage = "stop", None
        for chunk in response:
            if self._closed:
                return
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                finish_reason = choice.finish_reason or finish_reason
                for delta in split.feed(reasoning_of(choice.delta), choice.delta.content or ""):
                    first_token_s = first_token_s or time.perf_counter() - self._started_at
                    pieces[type(delta)] += 1
                    yield delta
        for delta in split.finish():
            pieces[type(delta)] += 1
            yield delta
        total_s = time.perf_counter() - self._started_at
        yield final_delta(finish_reason, usage, pieces[ReasoningDelta], pieces[AnswerDelta], first_token_s, total_s,
                          split.thinking_closed)  # fmt: skip


def _shut_down_socket(stream: Any) -> None:
    """Send the FIN now: closing a socket that another thread is reading only takes effect when that read
    returns (at the server's next chunk, which during a long prefill or a slow adapter can take seconds).
    A response read to its end (httpx marks it closed before the pool gets its connection back) is skipped."""
    if stream.response.is_closed:
        return
    with contextlib.suppress(Exception):  # no socket (already closed, or a transport without one): close() does
        network_stream = stream.response.extensions["network_stream"]
        network_stream.get_extra_info("socket").shutdown(socket.SHUT_RDWR)


def final_delta(finish_reason, usage, reasoning_pieces, answer_pieces, first_token_s, total_s, closed) -> FinalDelta:
    """The reply's FinalDelta. Token counts come from the server's usage when given (its reasoning_tokens, else
    the completion split by the ratio of reasoning to answer pieces), else from the pieces counted."""
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
        total_s=total_s,
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
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key  # for a second client on the same server (evaluation's reference loss)
        self.max_lora_rank = max_lora_rank
        self.starts_in_thinking = starts_in_thinking  # inline split only: the prompt already opened <think>
        self.server = ServerParams(strict=strict_openai)  # which vLLM extensions this server takes
        self._base_model = base_model
        self.given_ids = list(dict.fromkeys(i for i in [base_model or "", *model_ids] if i))  # offered always
        self._client = openai_client(self.base_url, api_key, timeout_s)
        self.http = adapter_client(self.base_url, api_key, timeout_s)  # the `/v1/adapters` routes

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
        `model_ids`), unless the error is a refused API key: then nothing would be served.
        """
        try:
            listed = once_more_if_broken(lambda: list(self._client.models.list()))
        except Exception as error:
            answered = getattr(error, "status_code", None) not in (None, *KEY_REFUSED)  # a refused key: nothing works
            if self.given_ids and answered:  # it answered, without a model list
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
        """Open the stream; a connection that breaks before any answer is tried once more (a pooled keep-alive
        connection the server closed just then). A timeout, or a second failure, is reported."""
        return once_more_if_broken(lambda: self._open(messages, model, params, extra_body))

    def _open(self, messages: list[ChatMessage], model: str, params: SamplingParams, extra_body: dict) -> Any:
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

    def adapters(self) -> list[AdapterStatus]:
        """The server's adapters by name (`GET /v1/adapters`); a server without that route: its loaded adapters
        as `/v1/models` lists them, without metadata."""
        response = self._adapter_request("GET", "adapters", "list the adapters")
        self._check_answer(response, "list the adapters")
        if not _manages_adapters(response):
            return [AdapterStatus(i.name, served_as=i.name, in_folder=False) for i in self.models() if i.is_adapter]
        if response.status_code >= 400:
            raise AdapterError(f"could not list the adapters: {_reason(response)}")
        return [AdapterStatus.from_json(item) for item in response.json().get("data", [])]

    def load_adapter(self, name: str) -> str:
        """Ask the server to load adapter `name` from its adapters folder; returns the served name."""
        return self._adapter_action(name, "load")

    def reload_adapter(self, name: str) -> str:
        """Ask the server to serve adapter `name` again under a fresh name; returns that name."""
        return self._adapter_action(name, "reload")

    def unload_adapter(self, name: str) -> None:
        self._adapter_action(name, "unload")

    def _adapter_action(self, name: str, action: str) -> str:
        """One POST to `/v1/adapters/{name}/{action}`; the server resolves and validates the name."""
        response = self._adapter_request(
            "POST", f"adapters/{quote(str(name), safe='@')}/{action}", f"{action} '{name}'"
        )
        self._check_answer(response, f"{action} adapter '{name}'")
        if not _manages_adapters(response):
            raise AdapterError(NOT_MANAGED.format(action=action, url=self.base_url))
        if response.status_code >= 400:
            raise AdapterError(f"could not {action} adapter '{name}': {_reason(response)}")
        return response.json().get("served") or name

    def _check_answer(self, response: Any, action: str) -> None:
        """Raise when the key was refused or the server failed: such an answer says nothing about its routes."""
        status = response.status_code
        if status in KEY_REFUSED:
            raise EngineUnavailableError(
                f"could not {action}: the server at {self.base_url} refused the API key (HTTP {status}). {KEY_HINT}"
            )
        if status >= 500:
            raise EngineUnavailableError(
                f"could not {action}: the server at {self.base_url} failed (HTTP {status}): {_reason(response)}"
            )

    def _adapter_request(self, method: str, path: str, action: str, body: dict | None = None) -> Any:
        import httpx

        try:
            return self.http.request(method, path, json=body)
        except httpx.HTTPError as error:
            raise EngineUnavailableError(f"could not {action}: the server at {self.base_url} cannot be reached "
                                         f"({type(error).__name__}: {error})") from error  # fmt: skip

    def load_adapter_path(self, name: str, path: Path) -> None:
        """Trusted in-process callers only (distillation, the terminal chat), never the page: validate a folder
        here and hand its path to vLLM's `/v1/load_lora_adapter` under `name`."""
        problems = check_adapter_name(name, self.base_model)
        problems += validate_adapter(Path(path), base_model_path=self._base_root(), max_rank=self.max_lora_rank)
        if problems:
            raise AdapterError(f"adapter '{name}' cannot be loaded: " + "; ".join(problems))
        body = {"lora_name": name, "lora_path": str(Path(path).resolve())}
        response = self._adapter_request("POST", "load_lora_adapter", f"load adapter '{name}'", body)
        self._check_answer(response, f"load adapter '{name}'")
        if response.status_code >= 400:
            raise AdapterError(f"could not load adapter '{name}': {_reason(response)}")

    def _base_root(self) -> str | None:
        """The base model's path on the server (vLLM lists it as `root`), for the base-model check."""
        try:
            listed = once_more_if_broken(lambda: list(self._client.models.list()))
        except Exception as error:
            raise engine_error_from(error, self.base_url, None) from error
        for model in listed:
            extra = model.model_extra or {}
            if not extra.get("parent"):
                return extra.get("root")
        return None


def _manages_adapters(response: Any) -> bool:
    """True when the answer comes from serving.adapter_routes (a plain server answers 404 without its header)."""
    return response.headers.get(REGISTRY_HEADER) == "1"


def _reason(response: Any) -> str:
    try:
        return error_reason(response.json()) or response.text.strip()
    except ValueError:
        return response.text.strip()


def _raise(error: BaseException) -> Iterator[Delta]:
    raise error
    yield  # pragma: no cover
