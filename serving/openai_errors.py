"""Turn `openai` client exceptions into the engine's errors, with messages written for the user.

vLLM's own messages are already precise ("This model's maximum context length is 2048 tokens ...",
"max_tokens=4000 cannot be greater than max_model_len=2048 ...", "The model `x` does not exist"), so they
are kept and prefixed with what went wrong in plain words and the HTTP status. The reason is read from
vLLM/OpenAI bodies (`{"error": {"message"}}`), FastAPI ones such as transformers serve's (`{"detail"}`)
and plain-text bodies alike.
"""

from __future__ import annotations

import re

from serving.protocol import BadRequestError, EngineError, EngineUnavailableError

_PARAMETER_SUFFIX = re.compile(r"\s*\(parameter=[^)]*\)\s*$")
KEY_HINT = (
    "Use the key the server was started with: `python -m serving` takes $VLLM_API_KEY, else writes a generated "
    "key to .cache/vllm-api-key; the app and `python -m serving.chat` read the variable named by --api-key-env "
    "(default VLLM_API_KEY), the app else the file named by --api-key-file."
)


def _server_message(error: Exception) -> str:
    """The server's own reason from its error body (vLLM/OpenAI `error.message`, FastAPI `detail`, plain text)."""
    reason = error_reason(getattr(error, "body", None))
    if not reason:
        reason = str(getattr(error, "message", None) or error)
    return _PARAMETER_SUFFIX.sub("", reason)


def error_reason(body: object) -> str:
    """The human part of an error body: a string, `{"error": {"message"}}`, `{"detail": ...}`, a list of those."""
    if isinstance(body, str):
        return body.strip()
    if isinstance(body, list):
        return "; ".join(found for found in map(error_reason, body) if found)
    if isinstance(body, dict):
        for key in ("error", "detail", "message", "msg"):
            found = error_reason(body.get(key))
            if found and key == "msg" and isinstance(body.get("loc"), list):  # FastAPI validation item
                return ".".join(map(str, body["loc"])) + f": {found}"
            if found:
                return found
    return ""


def refusal_reason(error: Exception) -> str | None:
    """The server's reason when it refused the request itself (HTTP 400 or 422), else None."""
    import openai

    if isinstance(error, openai.BadRequestError | openai.UnprocessableEntityError):
        return _server_message(error)
    return None


def _bad_request_message(message: str, status: str) -> str:
    lowered = message.lower()
    if "maximum context length" in lowered or "input tokens" in lowered:
        return f"the conversation is too long for the model's context{status}: {message} Clear the chat or shorten it."
    if "max_tokens" in lowered or "max_completion_tokens" in lowered:
        return f"max new tokens is too large{status}: {message}"
    return f"the server refused the request{status}: {message}"


def engine_error_from(error: Exception, base_url: str, model: str | None) -> EngineError:
    """Map any exception raised while talking to the server to an EngineError subclass."""
    import openai

    if isinstance(error, EngineError):
        return error
    message = _server_message(error)
    if isinstance(error, openai.APITimeoutError):
        return EngineUnavailableError(f"the model server at {base_url} did not answer in time")
    if isinstance(error, openai.APIConnectionError):
        return EngineUnavailableError(
            f"cannot reach the model server at {base_url} (not started yet, stopped, or crashed): {message}"
        )
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return EngineUnavailableError(
            f"the model server at {base_url} refused the API key (HTTP {error.status_code}: {message}). {KEY_HINT}"
        )
    if isinstance(error, openai.NotFoundError):
        return BadRequestError(f"unknown model '{model}' (HTTP 404, not served or not loaded): {message}")
    if isinstance(error, openai.BadRequestError | openai.UnprocessableEntityError):
        return _bad_request_from(message, model, f" (HTTP {error.status_code})")
    if isinstance(error, openai.RateLimitError):
        return EngineUnavailableError(f"the model server is busy (rate limited): {message}")
    if isinstance(error, openai.APIStatusError):
        if error.status_code == 404:
            return BadRequestError(f"unknown model '{model}': {message}")
        return EngineUnavailableError(f"the model server failed (HTTP {error.status_code}): {message}")
    if isinstance(error, openai.APIError):
        return EngineUnavailableError(f"the model server reported an error mid-stream: {message}")
    return EngineError(f"unexpected error while talking to {base_url}: {type(error).__name__}: {message}")


def _bad_request_from(message: str, model: str | None, status: str) -> BadRequestError:
    if "does not exist" in message.lower():
        return BadRequestError(f"unknown model '{model}'{status}, not served or not loaded: {message}")
    return BadRequestError(_bad_request_message(message, status))
