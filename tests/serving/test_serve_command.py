"""The vLLM command line that VLLMServer builds (no server is started here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.serve_args import ServeArgs
from serving.vllm_server import VLLMServer


def flag_value(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_context_is_capped_at_what_the_model_was_built_for(tiny_model_dir: Path, tmp_path: Path) -> None:
    args = ServeArgs(model=str(tiny_model_dir), adapters_dir=str(tmp_path), max_model_len=8192)
    assert flag_value(VLLMServer(args).command(), "--max-model-len") == "4096"  # the tiny model's positions


def test_a_smaller_context_is_kept_and_the_server_is_locked_down(tiny_model_dir: Path, tmp_path: Path) -> None:
    args = ServeArgs(model=str(tiny_model_dir), adapters_dir=str(tmp_path), max_model_len=1024)
    command = VLLMServer(args).command()
    assert flag_value(command, "--max-model-len") == "1024"
    assert flag_value(command, "--host") == "127.0.0.1"
    assert "--enable-lora" in command
    assert not any("api-key" in part for part in command), "the key must travel through the environment"


def test_entering_a_started_server_does_not_start_a_second_vllm(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    import subprocess

    server = VLLMServer(ServeArgs(model=str(tiny_model_dir), adapters_dir=str(tmp_path)))
    server._process = subprocess.Popen(["sleep", "30"], start_new_session=True)  # stands for a running vLLM
    try:
        monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("a second vLLM was started"))
        with server.start() as entered:  # `python -m serving` starts first, then enters the context
            assert entered is server and server.is_running()
    finally:
        monkeypatch.undo()
    assert not server.is_running(), "leaving the context stops the server"
