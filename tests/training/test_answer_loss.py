"""training.answer_loss: projecting only the answer positions gives the standard loss and the same gradients."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.answer_loss import answer_only_loss
from training.examples import IGNORE_INDEX


@pytest.fixture(scope="module")
def lora_model(tiny_model_dir: Path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    config.init_lora_weights = False  # non-zero B: the LoRA path contributes to the loss and gets gradients
    return get_peft_model(base, config)


def batch():
    import torch

    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(100, 5000, (3, 20), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[2, :4] = 0  # a left-padded row
    labels = input_ids.clone()
    labels[:, :12] = IGNORE_INDEX  # the prompt part
    labels[2, :4] = IGNORE_INDEX
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def loss_and_grads(model, compute) -> tuple[float, dict]:
    model.zero_grad()
    loss = compute()
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}
    return loss.item(), grads


@pytest.mark.slow  # a forward and backward pass of the tiny model per case
@pytest.mark.parametrize("num_items", [None, 17])
def test_same_loss_and_gradients_as_the_standard_loss(lora_model, num_items) -> None:
    import torch

    inputs = batch()
    answer = loss_and_grads(lora_model, lambda: answer_only_loss(lora_model, inputs, num_items))
    standard = loss_and_grads(lora_model, lambda: lora_model(**inputs, num_items_in_batch=num_items).loss)
    assert answer[0] == pytest.approx(standard[0], rel=1e-5)
    assert answer[1].keys() == standard[1].keys() and answer[1]
    for name, grad in answer[1].items():
        torch.testing.assert_close(grad, standard[1][name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.slow  # loads the tiny model (the fixture) and runs two forward passes
def test_a_model_wrapped_in_data_parallel_trains_with_the_standard_loss(lora_model, tmp_path: Path) -> None:
    """transformers wraps the model in nn.DataParallel when `python -m training` sees 2+ GPUs without torchrun;
    DataParallel splits the batch only in its own forward, so the loss goes through it. On a CPU DataParallel just
    calls the model: the same code path, one device."""
    import torch
    from transformers import TrainingArguments

    from training.answer_loss import answer_loss_trainer_class

    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    trainer = answer_loss_trainer_class()(model=lora_model, args=args)
    inputs = batch()
    with torch.no_grad():
        wrapped = trainer.compute_loss(torch.nn.DataParallel(lora_model), dict(inputs), num_items_in_batch=17)
        bare = trainer.compute_loss(lora_model, dict(inputs), num_items_in_batch=17)  # the answer-only loss
    assert wrapped.item() == pytest.approx(bare.item(), rel=1e-5)
