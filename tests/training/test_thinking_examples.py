"""Examples with distilled thinking, checked token by token against the real Qwen3-Thinking-2507 chat template.

The prompt prefix must be `apply_chat_template(messages[:-1], add_generation_prompt=True)` exactly (it ends
with `<|im_start|>assistant\\n<think>\\n`); the thinking follows; labels start after it (the `\\n</think>` that
closes it is the first labelled text) unless the thinking is trained too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import DEFAULT_SYSTEM_PROMPT, TrainArgs
from training.data import Row, load_rows
from training.distill import thinker_messages
from training.examples import IGNORE_INDEX, build_messages, encode_row, encode_with_thinking, prompt_messages

THINK_END = 151668
THINKING = "嗯，皇上问起今日之事。我是甄嬛，说话要端庄得体。\n先答应，再说明缘由。"


def generation_prompt_ids(tokenizer, row: Row) -> list[int]:
    messages = build_messages(row, DEFAULT_SYSTEM_PROMPT, THINKING)[:-1]
    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    return list(encoded["input_ids"])


def first_label(labels: list[int]) -> int:
    return next(index for index, label in enumerate(labels) if label != IGNORE_INDEX)


def test_prefix_is_the_generation_prompt_and_labels_start_after_the_thinking(tokenizer, subset_path: Path) -> None:
    thinking_ids = list(tokenizer(THINKING, add_special_tokens=False)["input_ids"])
    for row in load_rows(subset_path).rows[:24]:
        example = encode_with_thinking(tokenizer, row, DEFAULT_SYSTEM_PROMPT, THINKING, train_on_thinking=False)
        prefix = generation_prompt_ids(tokenizer, row)
        assert tokenizer.decode(prefix).endswith("<|im_start|>assistant\n<think>\n")
        assert example.input_ids[: len(prefix)] == prefix
        assert example.input_ids[len(prefix) : len(prefix) + len(thinking_ids)] == thinking_ids
        start = first_label(example.labels)
        assert start == len(prefix) + len(thinking_ids)
        labelled = example.labels[start:]
        assert IGNORE_INDEX not in labelled and THINK_END in labelled
        assert tokenizer.decode(labelled) == f"\n</think>\n\n{row.output}<|im_end|>"


def test_the_whole_example_is_the_template_rendering_of_the_conversation(tokenizer) -> None:
    row = Row("皇上万福。", "", "臣妾给皇上请安。", where="index 0")
    example = encode_with_thinking(tokenizer, row, DEFAULT_SYSTEM_PROMPT, THINKING, train_on_thinking=False)
    rendered = tokenizer.apply_chat_template(build_messages(row, DEFAULT_SYSTEM_PROMPT, THINKING), tokenize=False)
    assert tokenizer.decode(example.input_ids) == rendered.rstrip("\n")
    assert f"<|im_start|>assistant\n<think>\n{THINKING}\n</think>\n\n臣妾给皇上请安。<|im_end|>" in rendered


def test_train_on_thinking_puts_the_loss_on_the_thinking_too(tokenizer) -> None:
    row = Row("皇上万福。", "", "臣妾给皇上请安。", where="index 0")
    example = encode_with_thinking(tokenizer, row, DEFAULT_SYSTEM_PROMPT, THINKING, train_on_thinking=True)
    prefix = generation_prompt_ids(tokenizer, row)
    assert first_label(example.labels) == len(prefix)
    assert tokenizer.decode(example.labels[len(prefix) :]) == f"{THINKING}\n</think>\n\n臣妾给皇上请安。<|im_end|>"


def test_empty_thinking_is_exactly_the_default_mode(tokenizer, subset_path: Path) -> None:
    for row in load_rows(subset_path).rows[:8]:
        distilled = encode_with_thinking(tokenizer, row, DEFAULT_SYSTEM_PROMPT, "", train_on_thinking=False)
        plain = encode_row(tokenizer, row, DEFAULT_SYSTEM_PROMPT)
        assert (distilled.input_ids, distilled.labels) == (plain.input_ids, plain.labels)


def test_blind_asks_the_training_prompt_and_rationalized_adds_the_answer() -> None:
    row = Row("你是谁？", "", "臣妾甄嬛。", where="index 0")
    blind = thinker_messages(row, TrainArgs(distill_prompt="blind"))
    assert blind == prompt_messages(row, DEFAULT_SYSTEM_PROMPT)
    rationalized = thinker_messages(row, TrainArgs(distill_prompt="rationalized"))
    assert rationalized[1:] == blind[1:]
    assert rationalized[0]["content"].startswith(DEFAULT_SYSTEM_PROMPT) and "臣妾甄嬛。" in rationalized[0]["content"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"thinking": "distilled"}, "thinking must be one of empty, distill"),
        ({"distill_prompt": "star"}, "distill_prompt must be one of blind, rationalized"),
        ({"distill_engine": "sglang"}, "distill_engine must be one of"),
        ({"thinking": "distill", "distill_engine": "openai"}, "needs distill_base_url"),
        ({"distill_max_thinking_tokens": 0}, "distill_max_thinking_tokens"),
    ],
)
def test_bad_thinking_settings_are_refused_with_the_reason(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainArgs(**overrides).validate()


def test_thinking_label_names_the_mode() -> None:
    assert TrainArgs().thinking_label() == "empty"
    assert TrainArgs(thinking="distill").thinking_label() == "distill/blind"
    rationalized = TrainArgs(thinking="distill", distill_prompt="rationalized", train_on_thinking=True)
    assert rationalized.thinking_label() == "distill/rationalized+thinking-loss"
