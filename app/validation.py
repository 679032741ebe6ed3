"""Server-side checks of everything a handler receives (the page's widgets can be bypassed through the API).

Values sent straight to Gradio's API can be NaN, strings, out of range, or a model name like `../../x`;
each check raises BadRequestError with a sentence for the user, before any call to the engine. Model ids
may be written as servers write them (`org/name`, `name:tag`, a path on the server), but only an id the
engine offers now is ever sent: the app never opens one as a file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from serving.protocol import MODEL_ID_PATTERN, BadRequestError, SamplingParams


def clean_message(text: object, max_chars: int) -> str | None:
    """The message to send, None when it is empty or whitespace (then nothing happens)."""
    if not isinstance(text, str) or not text.strip():
        return None
    if len(text) > max_chars:
        raise BadRequestError(f"the message is {len(text):,} characters; the limit is {max_chars:,}. Shorten it.")
    return text


def sampling_params(
    temperature: object, top_p: object, top_k: object, max_tokens: object, seed: object, max_tokens_limit: int
) -> SamplingParams:
    """SamplingParams from raw widget values, or BadRequestError listing every problem."""
    problems: list[str] = []
    temp_value = _number(temperature, "temperature", problems)
    top_p_value = _number(top_p, "top_p", problems)
    top_k_value = _integer(top_k, "top_k", problems)
    max_tokens_value = _integer(max_tokens, "max new tokens", problems)
    seed_value = None if seed is None or seed == "" else _integer(seed, "seed", problems)
    if problems:
        raise BadRequestError("; ".join(problems))
    params = SamplingParams(
        temperature=temp_value, top_p=top_p_value, top_k=top_k_value, max_tokens=max_tokens_value, seed=seed_value
    )
    problems = params.problems()
    if max_tokens_value > max_tokens_limit:
        problems.append(f"max new tokens must be at most {max_tokens_limit}, got {max_tokens_value}")
    if problems:
        raise BadRequestError("; ".join(problems))
    return params


def _number(value: object, name: str, problems: list[str]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(f"{name} must be a finite number, got {value!r}")
        return 0.0
    return float(value)


def _integer(value: object, name: str, problems: list[str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(f"{name} must be an integer, got {value!r}")
        return 0
    if float(value) != int(value):
        problems.append(f"{name} must be a whole number, got {value!r}")
    return int(value)


def checked_model(name: object, available: Iterable[str]) -> str:
    """The model id if it is one the engine offers or a well-formed id; BadRequestError otherwise.

    A well-formed id the engine does not offer now (an adapter unloaded behind the app's back, a typed id
    the server does not list) passes here and fails in its side only, without any call (see `not_served`).
    """
    choices = list(available)
    if isinstance(name, str) and name in choices:
        return name
    if not isinstance(name, str) or not MODEL_ID_PATTERN.fullmatch(name) or ".." in name.split("/"):
        raise BadRequestError(f"unknown model {name!r}: choose one of {', '.join(choices) or '(none loaded)'}")
    return name


def not_served(name: str, available: Iterable[str]) -> str | None:
    """A message for the side whose model is not served now, else None."""
    if name in set(available):
        return None
    return (
        f"model '{name}' is not served now (unloaded, or not listed by the server): pick one in the model list, "
        "reload it, or start the app with it in --models"
    )
