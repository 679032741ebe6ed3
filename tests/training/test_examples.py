"""SFT examples: the prefix is the generation prompt token for token, labels decode to exactly the answer part."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.collate import PadCollator
from training.config import DEFAULT_SYSTEM_PROMPT
from training.data import Row, load_rows
from training.examples import IGNORE_INDEX, build_messages, encode_row, encode_rows

THINK_END = 151668
IM_END = 151645


def prompt_ids(tokenizer, row: Row, system_prompt: str = DEFAULT_SYSTEM_PROMPT) -> list[int]:
    messages = build_messages(row, system_prompt)[:-1]
    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    return list(encoded["input_ids"])


def test_prefix_equals_generation_prompt_for_every_subset_row(tokenizer, subset_path: Path) -> None:
    for row in load_rows(subset_path).rows:
        example = encode_row(tokenizer, row, DEFAULT_SYSTEM_PROMPT)
        expected = prompt_ids(tokenizer, row)
        assert example.input_ids[: len(expected)] == expected
        assert example.labels[: len(expected)] == [IGNORE_INDEX] * len(expected)
        assert all(label != IGNORE_INDEX for label in example.labels[len(expected) :])


def test_labels_decode_to_exactly_the_answer_part(tokenizer, subset_path: Path) -> None:
    for row in load_rows(subset_path).rows[:16]:
        example = encode_row(tokenizer, row, DEFAULT_SYSTEM_PROMPT)
        answer_ids = [label for label in example.labels if label != IGNORE_INDEX]
        assert tokenizer.decode(answer_ids) == f"\n</think>\n\n{row.output}<|im_end|>"
        assert THINK_END in answer_ids and answer_ids[-1] == IM_END


def test_persona_is_configurable_and_rendered_by_the_model_template(tokenizer) -> None:
    row = Row("你是谁？", "", "臣妾甄嬛。", where="index 0")
    example = encode_row(tokenizer, row, "你是华妃")
    text = tokenizer.decode(example.input_ids)
    assert text.startswith("<|im_start|>system\n你是华妃<|im_end|>\n<|im_start|>user\n你是谁？<|im_end|>\n")
    assert "<|im_start|>assistant\n<think>\n\n</think>\n\n臣妾甄嬛。<|im_end|>" in text


def test_input_field_is_appended_to_the_instruction(tokenizer) -> None:
    row = Row("请翻译", "hello", "你好。", where="index 0")
    assert "请翻译\nhello<|im_end|>" in tokenizer.decode(encode_row(tokenizer, row, DEFAULT_SYSTEM_PROMPT).input_ids)


def test_too_long_examples_are_dropped_and_counted(tokenizer) -> None:
    rows = [Row("短", "", "好。", where="index 0"), Row("长", "", "很长的回答。" * 40, where="index 1")]
    report = encode_rows(tokenizer, rows, DEFAULT_SYSTEM_PROMPT, max_length=64)
    assert [e.where for e in report.examples] == ["index 0"]
    assert report.dropped_too_long == ["index 1"]
    assert report.percentiles()["max"] > 64


def test_collator_pads_to_the_longest_row_not_max_length() -> None:
    features = [{"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}, {"input_ids": [4] * 7, "labels": [4] * 7}]
    batch = PadCollator(pad_token_id=0)(features)
    assert batch["input_ids"].shape == (2, 7)
    assert batch["labels"][0].tolist() == [-100, 2, 3, -100, -100, -100, -100]
    assert batch["attention_mask"].sum().item() == 10
    assert PadCollator(pad_token_id=0, pad_to_multiple_of=8)(features)["input_ids"].shape == (2, 8)
    assert PadCollator(pad_token_id=0, pad_to=1024)(features)["input_ids"].shape == (2, 1024)


@pytest.mark.parametrize("bad_template", ["{{ 'x' }}"])
def test_template_without_matching_prefix_is_refused(tokenizer, bad_template: str) -> None:
    original = tokenizer.chat_template
    tokenizer.chat_template = bad_template
    try:
        with pytest.raises(ValueError):
            encode_row(tokenizer, Row("a", "", "b", where="index 0"), DEFAULT_SYSTEM_PROMPT)
    finally:
        tokenizer.chat_template = original
