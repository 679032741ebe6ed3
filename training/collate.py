"""Batch collation: dynamic padding to the longest row of the batch (never to max_length by default).

`PadCollator(pad_token_id)` pads input_ids with the pad token, labels with -100 and builds the attention
mask. `pad_to` forces a fixed length instead; only the padding benchmark uses it (the seed recipe's
pad-every-row-to-1024 behaviour, kept to measure what dynamic padding saves).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from training.examples import IGNORE_INDEX


@dataclass
class PadCollator:
    pad_token_id: int
    pad_to: int | None = None  # None = dynamic (longest in batch)
    pad_to_multiple_of: int = 1

    def target_length(self, lengths: list[int]) -> int:
        if self.pad_to is not None:
            return max(self.pad_to, *lengths)
        longest = max(lengths)
        multiple = max(1, self.pad_to_multiple_of)
        return -(-longest // multiple) * multiple

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        lengths = [len(feature["input_ids"]) for feature in features]
        width = self.target_length(lengths)
        input_ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(features), width), dtype=torch.long)
        for index, (feature, length) in enumerate(zip(features, lengths, strict=True)):
            input_ids[index, :length] = torch.as_tensor(feature["input_ids"], dtype=torch.long)
            labels[index, :length] = torch.as_tensor(feature["labels"], dtype=torch.long)
            attention_mask[index, :length] = 1
        return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}
