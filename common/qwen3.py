"""Facts about the Qwen3 model family shared by training/, serving/, app/, tests/ and bench/: one home each.

ZHEN_HUAN_PERSONA is the persona text of the public self-llm huanhuan recipe (datawhalechina/self-llm): training
renders every example with it and the app offers it as a preset, so the adapter sees the sentence it learned.
QWEN3_LORA_TARGETS are the linear layers of a Qwen3 decoder block: the seed recipe puts LoRA on all of them,
and vLLM serves LoRA on exactly these for Qwen3.
"""

from __future__ import annotations

ZHEN_HUAN_PERSONA = "现在你要扮演皇帝身边的女人--甄嬛"
QWEN3_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
