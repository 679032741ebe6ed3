"""Teacher-forced loss of the reference answer under the base and under the adapter.

Each held-out row is tokenized exactly as the trainer did (training.examples.encode_row): the generation
prompt, then the reference completion `\\n</think>\\n\\n{answer}<|im_end|>`. The loss of a row is the mean
negative log-likelihood of the completion tokens (what the trainer's eval loss averages), its perplexity
exp(loss).

- `VllmReferenceLoss`: vLLM's completions endpoint with `prompt_logprobs` on the token ids, against the
  served base or adapter name (one request per row and side, max_tokens 1). Each one goes out alone, when the
  server runs nothing else (serving.prefill_gate): vLLM 0.32's engine dies when a prompt_logprobs request
  shares a batch with LoRA requests (vllm-project/vllm#16668).
- `TransformersReferenceLoss`: transformers + peft in-process, batched: its own copy of the model, or
  (`on_engine`) the LocalEngine's model when the replies come from one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from serving.http_clients import once_more_if_broken
from serving.prefill_gate import PrefillGate, ServerBusy, metrics_reader
from serving.protocol import BASE_MODEL_ALIAS, BadRequestError, EngineError

TokenPair = tuple[list[int], list[int]]  # (prompt ids, reference completion ids)


class ReferenceLoss(Protocol):
    def losses(self, model: str, items: Sequence[TokenPair]) -> list[float]:
        """Mean NLL per item of its completion tokens under `model` (the base alias or an adapter name)."""
        ...


class LossesGivenUp(EngineError):
    """The server cannot take reference-loss requests now (busy past the gate's timeout): no more are asked."""


class VllmReferenceLoss:
    """Reference loss from a vLLM server's `prompt_logprobs` (an OpenAI-compatible server without it fails)."""

    def __init__(self, base_url: str, api_key: str, base_model: str, concurrency: int = 1, timeout_s: float = 600,
                 gate: PrefillGate | None = None):  # fmt: skip
        """`gate`: the PrefillGate of the engine that chats on this server (OpenAIEngine.prefill_gate), so each
        loss request goes out alone; without one, a gate of its own (it still waits for the server's gauges)."""
        from serving.http_clients import openai_client

        self._client = openai_client(base_url, api_key, timeout_s)
        self._gate = gate or PrefillGate(metrics_reader(base_url))
        self.base_model = base_model
        self.concurrency = concurrency

    def losses(self, model: str, items: Sequence[TokenPair]) -> list[float]:
        """The items' losses, sent while the server runs nothing else (the gate is held for all of them)."""
        name = self.base_model if model == BASE_MODEL_ALIAS else model
        try:
            with self._gate.alone(), ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
                return list(pool.map(lambda item: self._one(name, item), items))
        except ServerBusy as error:  # no row's fault: the loss phase ends, the run reports without the rest
            raise LossesGivenUp(str(error)) from error

    def _one(self, name: str, item: TokenPair) -> float:
        prompt, completion = item
        ids = [*prompt, *completion]
        try:
            response = once_more_if_broken(lambda: self._client.completions.create(
                model=name, prompt=ids, max_tokens=1, temperature=0.0, extra_body={"prompt_logprobs": 0}
            ))  # fmt: skip
        except Exception as error:
            from serving.openai_errors import engine_error_from, refusal_reason

            reason = refusal_reason(error)  # e.g. prompt + reference longer than the server's context
            if reason:
                raise BadRequestError(
                    f"the server refused this row's reference ({len(ids)} tokens): {reason}"
                ) from error
            raise engine_error_from(error, str(self._client.base_url), name) from error
        choice = response.choices[0]
        listed = getattr(choice, "prompt_logprobs", None) or (choice.model_extra or {}).get("prompt_logprobs")
        if not listed or len(listed) != len(ids):
            raise EngineError(
                f"the server gave no prompt_logprobs for '{name}' (is it vLLM?); use --loss transformers instead"
            )
        return _mean_nll(listed[len(prompt) :], completion)


def _mean_nll(entries: Sequence[Any], tokens: Sequence[int]) -> float:
    """Mean -logprob of tokens from vLLM's per-position {token_id: {logprob, ...}} maps."""
    total = 0.0
    for entry, token in zip(entries, tokens, strict=True):
        info = entry[str(token)] if str(token) in entry else entry[token]
        total -= float(info["logprob"] if isinstance(info, dict) else info.logprob)
    return total / len(tokens)


class TransformersReferenceLoss:
    """Reference loss with transformers + peft in this process: a copy of base + adapter loaded here, or
    (`on_engine`) the LocalEngine's own model, on its model thread, so a second copy never takes the memory.
    Each batch runs with peft's per-row `adapter_names` (`"__base__"` for the base), so the model's active
    adapter is never switched."""

    def __init__(self, model_path: Path, adapter_path: Path, adapter_name: str, batch_size: int = 8):
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        from serving.local_engine import resolve_placement

        device, dtype = resolve_placement("auto", "auto")
        base = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
        model = PeftModel.from_pretrained(base, str(adapter_path), adapter_name=adapter_name).to(device).eval()
        self._model: Callable[[], Any] = lambda: model
        self._run: Callable[..., Any] = lambda fn, *args: fn(*args)
        self.adapter_name = adapter_name
        self.batch_size = batch_size

    @classmethod
    def on_engine(cls, engine: Any, adapter_name: str, batch_size: int = 8) -> TransformersReferenceLoss:
        """The loss on a LocalEngine's model (which serves `adapter_name`), run in order with its generates."""
        loss = cls.__new__(cls)
        loss._model = lambda: engine.model  # read when used: loading the first adapter replaces engine.model
        loss._run = engine.run_on_model_thread
        loss.adapter_name, loss.batch_size = adapter_name, batch_size
        return loss

    def losses(self, model: str, items: Sequence[TokenPair]) -> list[float]:
        if model not in (BASE_MODEL_ALIAS, self.adapter_name):
            raise EngineError(f"unknown model '{model}' for the reference loss (have base and {self.adapter_name})")
        from serving.local_engine import PEFT_BASE_NAME  # the one name peft's adapter_names gives the base

        adapter = PEFT_BASE_NAME if model == BASE_MODEL_ALIAS else self.adapter_name
        out: list[float] = []
        for start in range(0, len(items), self.batch_size):
            out += self._run(self._batch, items[start : start + self.batch_size], adapter)
        return out

    def _batch(self, items: Sequence[TokenPair], adapter: str) -> list[float]:
        import torch

        model = self._model()
        width = max(len(p) + len(c) for p, c in items)
        ids = torch.zeros((len(items), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, (prompt, completion) in enumerate(items):
            ids[row, : len(prompt) + len(completion)] = torch.tensor([*prompt, *completion])
            mask[row, : len(prompt) + len(completion)] = 1
        device = model.device
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                           adapter_names=[adapter] * len(items)).logits.float()  # fmt: skip
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1).cpu()
        out = []
        for row, (prompt, completion) in enumerate(items):
            positions = torch.arange(len(prompt) - 1, len(prompt) + len(completion) - 1)
            picked = logprobs[row, positions, torch.tensor(completion)]
            out.append(float(-picked.mean()))
        return out


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 50.0))
