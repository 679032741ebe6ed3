"""A Trainer whose loss projects only the answer positions onto the vocabulary.

A causal-LM forward computes logits for every position, [batch, seq, 151,936] floats, although the labels
of the prompt are -100 and thrown away. Here the decoder runs as usual, the hidden states of the positions
whose next token is a label are gathered, and only those go through the output layer and cross-entropy.
Same loss, same gradients; far less compute and memory (about 3x fewer logits on huanhuan.json, whose
prompts are longer than the answers). Works for peft-wrapped and plain models. Under DDP (`accelerate
launch`) the standard loss is used instead: DDP syncs gradients only through the wrapped model's forward. So is
it under DataParallel, which transformers uses when a plain `python -m training` sees 2+ GPUs: DataParallel
splits the batch across the GPUs only in its own forward (and transformers scales that loss for it).
"""

from __future__ import annotations

from typing import Any

from training.distributed import is_parallel_wrapped
from training.examples import IGNORE_INDEX


def unwrap_causal_lm(model):
    """The transformers *ForCausalLM inside a peft wrapper (LoRA layers stay active: they are injected)."""
    while hasattr(model, "get_base_model") and model is not model.get_base_model():
        model = model.get_base_model()
    return model


def answer_only_loss(model, inputs: dict[str, Any], num_items_in_batch=None):
    """Cross-entropy over label positions only; sum / num_items_in_batch when given, else mean."""
    import torch.nn.functional as F

    causal_lm = unwrap_causal_lm(model)
    labels = inputs["labels"]
    hidden = causal_lm.get_decoder()(
        input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"), use_cache=False
    ).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    logits = causal_lm.get_output_embeddings()(hidden[:, :-1][keep]).float()
    loss = F.cross_entropy(logits, targets[keep], reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else keep.sum().clamp(min=1)
    if hasattr(count, "to"):
        count = count.to(loss.device)
    return loss / count


def answer_loss_trainer_class():
    from transformers import Trainer

    class AnswerLossTrainer(Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.model_accepts_loss_kwargs = True  # compute_loss normalizes by num_items_in_batch itself

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if is_parallel_wrapped(model):  # DDP / DataParallel work only through their own forward: standard loss
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            loss = answer_only_loss(model, inputs, num_items_in_batch)
            return (loss, {"loss": loss}) if return_outputs else loss

    return AnswerLossTrainer
