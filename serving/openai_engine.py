"""OpenAIEngine: the engine protocol over any OpenAI-compatible server (vLLM first; transformers serve,
Ollama, llama.cpp, cloud APIs).

Each reply is an OpenAIStream (serving/openai_stream.py: thinking apart from the answer, closed at once by Stop).
vLLM extensions (`top_k`) reach only servers that take them (serving/openai_params.py). Model ids are sent as the
server writes them (`org/name`, `name:tag`, a path on the server), never opened here; ids given to the engine are
served even when `/v1/models` fails or omits them. Adapters are listed, loaded, reloaded and unloaded BY NAME
through the `/v1/adapters` routes our vLLM server runs (serving/adapter_routes.py), one request per action; a
server without them (a plain vLLM, another OpenAI server) lists its loaded adapters from `/v1/models` and refuses
load/unload with a one-line reason. A refused API key (HTTP 401/403) or a failing server (5xx) is reported as
such, never taken for a server without those routes, nor for an empty model list.

    engine = OpenAIEngine("http://127.0.0.1:8000/v1", api_key=os.environ["VLLM_API_KEY"])
    for delta in engine.stream_chat([{"role": "user", "content": "你好"}], "base", SamplingParams()):
        print(delta)
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

from serving.adapter_routes import REGISTRY_HEADER
from serving.adapters import validate_adapter
from serving.http_clients import adapter_client, once_more_if_broken, openai_client
from serving.openai_errors import KEY_HINT, engine_error_from, error_reason, refusal_reason
from serving.openai_params import ServerParams, notice_for
from serving.openai_stream import OpenAIStream
from serving.prefill_gate import PrefillGate, metrics_reader
from serving.protocol import (
    BASE_MODEL_ALIAS,
    AdapterError,
    AdapterStatus,
    BadRequestError,
    ChatMessage,
    ChatRequest,
    EngineUnavailableError,
    ModelInfo,
    SamplingParams,
    check_adapter_name,
)

KEY_REFUSED = (401, 403)  # HTTP statuses of a missing or wrong API key
NOT_MANAGED = (
    "this server does not manage adapters by name; cannot {action} at {url}: start it with `python -m serving` "
    "(its adapters folder is then served by name), or load the adapter on that server yourself"
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
        # shared with the evaluation's reference loss on this server (serving.prefill_gate: vLLM#16668)
        self.prefill_gate = PrefillGate(metrics_reader(self.base_url))

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
        with self.prefill_gate.chat_request():
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
