"""The adapter that `python -m training --config configs/lora_tiny.yaml` exports (the shared `trained_adapter_dir`)
makes the tiny model close its thinking block, answer and stop: what the app's adapter side needs to show.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
THINK_END, IM_END = 151668, 151645


def test_tiny_adapter_closes_thinking_answers_and_stops(tiny_model_dir: Path, trained_adapter_dir: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.config import DEFAULT_SYSTEM_PROMPT

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, trained_adapter_dir)
    for question in ("你是谁？", "皇上驾到！"):
        messages = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": question}]
        inputs = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
        )
        output = model.generate(**inputs, max_new_tokens=24, do_sample=False)
        new = output[0, inputs["input_ids"].shape[1] :].tolist()
        assert THINK_END in new and IM_END in new, tokenizer.decode(new)
        answer = new[new.index(THINK_END) + 1 : new.index(IM_END)]
        assert tokenizer.decode(answer).strip(), tokenizer.decode(new)
    with model.disable_adapter():  # the random base never closes its thinking in the same budget
        output = model.generate(**inputs, max_new_tokens=24, do_sample=False)
    assert THINK_END not in output[0, inputs["input_ids"].shape[1] :].tolist()
