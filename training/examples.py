"""Turn rows into tokenized SFT examples with the model's OWN chat template, labels masked to the answer.

Each row is rendered as [system persona, user, assistant]. The prompt part is exactly
`apply_chat_template(messages[:-1], add_generation_prompt=True)` (for Qwen3-Thinking-2507 it ends with
`<|im_start|>assistant\n<think>\n`), tokenized on its own; the completion is the rest of the rendered text
up to and including `<|im_end|>` (`\n</think>\n\n{answer}<|im_end|>`), also tokenized on its own, so the
prefix tokens are the generation-prompt tokens token for token (tokenizing the whole text at once would
merge `\n` + `\n` across the boundary). Labels are -100 over the prefix. An example longer than max_length
is dropped and counted (never trained on with its answer cut off or with zero labels).

With distilled thinking (training.distill) the assistant turn carries the base model's own thinking as
`reasoning_content`, which the template renders as `<think>\n{thinking}\n</think>\n\n{answer}`. The completion
is then tokenized in two parts, the thinking and the rest (`\n</think>\n\n{answer}<|im_end|>`), and the labels
start after the thinking unless `train_on_thinking`: the loss teaches closing the thinking and answering in
voice, not thinking the thinker's thoughts again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from training.data import Row

IGNORE_INDEX = -100


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]
    where: str

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class EncodeReport:
    examples: list[Example] = field(default_factory=list)
    dropped_too_long: list[str] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)  # all rendered lengths, kept or not

    def percentiles(self) -> dict[str, int]:
        return percentiles(self.lengths)


def percentiles(numbers: Iterable[int]) -> dict[str, int]:
    """min, p50, p90, p99, max and mean of a list of lengths ({} when empty)."""
    values = sorted(numbers)
    if not values:
        return {}
    pick = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
    out = {name: values[min(len(values) - 1, int(q * len(values)))] for name, q in pick.items()}
    return {"min": values[0], **out, "max": values[-1], "mean": round(sum(values) / len(values))}


def prompt_messages(row: Row, system_prompt: str) -> list[dict[str, str]]:
    """[system persona, user]: what serving sends for this row (and what the thinker sees in blind mode)."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*messages, {"role": "user", "content": row.prompt}]


def build_messages(row: Row, system_prompt: str, thinking: str | None = None) -> list[dict[str, str]]:
    """[system persona, user, assistant]; with `thinking`, the assistant turn carries it as reasoning_content."""
    assistant = {"role": "assistant", "content": row.output}
    if thinking is not None:
        assistant["reasoning_content"] = thinking
    return [*prompt_messages(row, system_prompt), assistant]


def _render(tokenizer, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def completion_text(tokenizer, messages: list[dict[str, str]]) -> tuple[str, str]:
    """(prompt text, completion text up to and including the end-of-turn token)."""
    prompt = _render(tokenizer, messages[:-1], add_generation_prompt=True)
    full = _render(tokenizer, messages, add_generation_prompt=False)
    if not full.startswith(prompt):
        raise ValueError(
            "the chat template renders the conversation with a different prefix than its generation prompt; "
            "labels cannot be aligned with what serving will send"
        )
    completion = full[len(prompt) :]
    end_token = tokenizer.eos_token or "<|im_end|>"
    cut = completion.rfind(end_token)
    if cut < 0:
        raise ValueError(f"the rendered assistant turn does not contain the end-of-turn token {end_token!r}")
    return prompt, completion[: cut + len(end_token)]


def encode_row(tokenizer, row: Row, system_prompt: str) -> Example:
    """Tokenize one row; labels are -100 over the generation prompt and the completion tokens elsewhere."""
    prompt, completion = completion_text(tokenizer, build_messages(row, system_prompt))
    prompt_ids, completion_ids = _ids(tokenizer, prompt), _ids(tokenizer, completion)
    return Example(prompt_ids + completion_ids, [IGNORE_INDEX] * len(prompt_ids) + completion_ids, row.where)


def split_thinking(completion: str) -> tuple[str, str]:
    """(thinking, rest) of a rendered completion `{thinking}\n</think>\n\n{answer}<|im_end|>`."""
    cut = completion.find("\n</think>")
    if cut < 0:
        raise ValueError("the rendered assistant turn has no `\\n</think>`: the chat template dropped the thinking")
    return completion[:cut], completion[cut:]


def encode_with_thinking(tokenizer, row: Row, system_prompt: str, thinking: str, train_on_thinking: bool) -> Example:
    """Tokenize a row whose assistant turn carries thinking; labels start after it unless train_on_thinking."""
    prompt, completion = completion_text(tokenizer, build_messages(row, system_prompt, thinking))
    thought, rest = split_thinking(completion)
    prompt_ids, thought_ids, rest_ids = _ids(tokenizer, prompt), _ids(tokenizer, thought), _ids(tokenizer, rest)
    masked = len(prompt_ids) + (0 if train_on_thinking else len(thought_ids))
    input_ids = prompt_ids + thought_ids + rest_ids
    return Example(input_ids, [IGNORE_INDEX] * masked + input_ids[masked:], row.where)


def encode_rows(
    tokenizer,
    rows: Iterable[Row],
    system_prompt: str,
    max_length: int,
    progress: Callable[[Iterable], Iterable] = lambda items: items,
    encode: Callable[[Row], Example] | None = None,
) -> EncodeReport:
    """Encode every row (encode_row unless `encode` is given); rows longer than max_length are dropped and listed."""
    report = EncodeReport()
    encode = encode or (lambda row: encode_row(tokenizer, row, system_prompt))
    for row in progress(rows):
        example = encode(row)
        report.lengths.append(len(example))
        if len(example) > max_length:
            report.dropped_too_long.append(row.where)
            continue
        report.examples.append(example)
    return report
