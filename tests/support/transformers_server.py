"""A second real OpenAI-compatible server for the tests: `transformers serve` (transformers' own server).

It serves whole models by id and has no runtime LoRA, so the trained adapter is merged into a copy of the
tiny model first (`merge_adapter`). The server runs on 127.0.0.1 and a free port with no model hub
(HF_HUB_OFFLINE=1) and an empty hub cache, so its `/v1/models` fails (it lists the hub cache) and models
are named as this server names them: the base as `local/tiny-qwen3` (a folder under its working directory,
written like a hub `org/name`), the merged model by its absolute path. Stopping kills its process group.

    with TransformersServer(models_root, tiny_model_dir, merge_adapter(tiny, adapter, out), log) as server:
        engine = server.engine()  # OpenAIEngine given both ids
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from common.net import free_port
from common.process_group import stop_process_group

BASE_ID = "local/tiny-qwen3"
STARTUP_TIMEOUT_S = 300


def merge_adapter(base_dir: Path, adapter_dir: Path, out_dir: Path) -> Path:
    """peft's merge_and_unload of the adapter into the base, saved with the base's tokenizer (float32)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out_dir)
    return out_dir


class TransformersServer:
    """`transformers serve` on the tiny model and the merged adapter; a context manager that kills its tree."""

    def __init__(self, models_root: Path, base_dir: Path, merged_dir: Path, log_path: Path) -> None:
        self.models_root = models_root
        self.base_model = BASE_ID
        self.tuned_model = str(merged_dir.resolve())
        self.log_path = log_path
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        (models_root / BASE_ID).parent.mkdir(parents=True, exist_ok=True)
        if not (models_root / BASE_ID).exists():
            (models_root / BASE_ID).symlink_to(base_dir.resolve(), target_is_directory=True)
        self._process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "transformers.cli.transformers", "serve", "--host", "127.0.0.1",
                "--port", str(self.port), "--device", "cpu", "--model-timeout", "-1"]  # fmt: skip

    def environment(self) -> dict[str, str]:
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        env["HF_HUB_CACHE"] = str(self.models_root / "no-hub-cache")  # absent: nothing cached, nothing fetched
        return env

    def start(self) -> TransformersServer:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(), cwd=self.models_root, env=self.environment(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        try:
            self._wait_healthy()
            for model in (self.base_model, self.tuned_model):
                self.load(model)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"transformers serve exited while starting:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base_url.removesuffix("/v1") + "/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"transformers serve was not healthy after {STARTUP_TIMEOUT_S} s:\n{self.log_tail()}")

    def load(self, model: str) -> None:
        """Load a model now through the server's `/load_model` (its SSE progress ends with ready or error)."""
        url = self.base_url.removesuffix("/v1") + "/load_model"
        text = httpx.post(url, json={"model": model}, timeout=STARTUP_TIMEOUT_S).text
        if '"status": "ready"' not in text:
            raise RuntimeError(f"transformers serve could not load {model}: {text[-2000:]}\n{self.log_tail()}")

    def engine(self, **kwargs):
        """An OpenAIEngine on this server, given both ids (its `/v1/models` cannot list them)."""
        from serving.openai_engine import OpenAIEngine

        return OpenAIEngine(self.base_url, "EMPTY", self.base_model, model_ids=[self.tuned_model], **kwargs)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.is_file():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL after 15 s (and to anything left in the group)."""
        process, self._process = self._process, None
        if process is not None:
            stop_process_group(process.pid, 15.0, leader=process)

    def __enter__(self) -> TransformersServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
