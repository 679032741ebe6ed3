"""Model download and dataset fetch, exercised against local folders and files (never a hub or the network)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT
from training.download import DONE_MARKER, DownloadError, download_model, local_snapshot
from training.fetch_dataset import fetch_dataset


def test_download_from_local_folder_via_cli(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "Models" / "tiny"
    cmd = [sys.executable, "-m", "training.download", "--model-id", "Qwen/tiny", "--from-local", str(tiny_model_dir),
           "--out", str(out)]  # fmt: skip
    result = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (out / DONE_MARKER).is_file()
    assert (out / "model.safetensors").read_bytes() == (tiny_model_dir / "model.safetensors").read_bytes()
    again = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert "complete already" in again.stdout


def test_interrupted_copy_resumes(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A rerun keeps the files already copied and continues the `.part` file cut short by the kill."""
    out = tmp_path / "m"
    out.mkdir()
    shutil.copyfile(tiny_model_dir / "config.json", out / "config.json")  # a file from the first attempt
    os.utime(out / "config.json", ns=(1, 1))
    weights = (tiny_model_dir / "model.safetensors").read_bytes()
    half = len(weights) // 2
    kept = b"\xab" * half  # what the first attempt wrote (marked, to see that it is continued, not rewritten)
    (out / "model.safetensors.part").write_bytes(kept)
    download_model("Qwen/tiny", out, local_snapshot(tiny_model_dir), log=lambda _: None)
    resumed = (out / "model.safetensors").read_bytes()
    assert resumed[:half] == kept and resumed[half:] == weights[half:], "the .part file is continued at its end"
    assert (out / "config.json").stat().st_mtime_ns == 1, "a file copied before is not copied again"
    assert not list(out.glob("*.part")) and (out / DONE_MARKER).is_file()


def test_a_part_file_longer_than_its_source_starts_over(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    out.mkdir()
    weights = (tiny_model_dir / "model.safetensors").read_bytes()
    (out / "model.safetensors.part").write_bytes(b"x" * (len(weights) + 10))
    download_model("Qwen/tiny", out, local_snapshot(tiny_model_dir), log=lambda _: None)
    assert (out / "model.safetensors").read_bytes() == weights


def test_incomplete_snapshot_is_reported(tmp_path: Path) -> None:
    def half_snapshot(model_id: str, out: Path) -> None:
        (out / "config.json").write_text("{}", encoding="utf-8")
        (out / "model.safetensors.index.json").write_text(
            json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors"}}), encoding="utf-8"
        )

    with pytest.raises(DownloadError, match=r"model-00001-of-00002\.safetensors") as error:
        download_model("Qwen/x", tmp_path / "x", half_snapshot, log=lambda _: None)
    assert "tokenizer" in str(error.value)
    assert not (tmp_path / "x" / DONE_MARKER).exists()


def test_fetch_dataset_from_local_file(subset_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "Datasets" / "huanhuan.json"
    fetch_dataset(str(subset_path), out, log=lambda _: None)
    assert out.read_bytes() == subset_path.read_bytes()


def test_fetch_dataset_refuses_a_bad_file_and_leaves_nothing(tmp_path: Path) -> None:
    from training.data import DatasetError

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"instruction": "a"}] * 10), encoding="utf-8")
    out = tmp_path / "Datasets" / "huanhuan.json"
    with pytest.raises(DatasetError):
        fetch_dataset(str(bad), out, log=lambda _: None)
    assert list(out.parent.iterdir()) == []


def test_a_failed_download_says_so_in_one_line_with_the_ways_forward(tmp_path: Path) -> None:
    def unreachable_hub(model_id: str, out: Path) -> None:
        raise ConnectionError("Max retries exceeded with url: /api/v1/models/Qwen/x\nTraceback (most recent call)")

    with pytest.raises(DownloadError) as error:
        download_model("Qwen/x", tmp_path / "x", unreachable_hub, log=lambda _: None)
    message = str(error.value)
    assert "\n" not in message
    assert "ConnectionError: Max retries exceeded" in message
    assert "Rerun the same command to resume" in message and "--from-local" in message
    assert not (tmp_path / "x" / DONE_MARKER).exists()


def test_a_download_that_cannot_fit_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    from training.download import check_free_disk

    with pytest.raises(DownloadError, match=r"GB free at .*needs about 1000000 GB"):
        check_free_disk(tmp_path / "Models" / "big", needed_gb=1e6)
    assert not (tmp_path / "Models").exists()


def test_a_resumed_download_asks_only_for_the_room_it_still_needs(tmp_path: Path, monkeypatch) -> None:
    """12 GB free, the network drops at 5 GB: 7 GB are free and about 5 GB are still to come, so it resumes."""
    import training.download as download

    monkeypatch.setattr(download, "free_disk_gb", lambda _: 7.0)
    out = tmp_path / "Models" / "Qwen3-4B-Thinking-2507"
    calls: list[str] = []
    with pytest.raises(DownloadError, match=r"only 7.0 GB free .* needs about 10 GB"):
        download.download_model("Qwen/x", out, None, log=calls.append)
    (out / "._____temp").mkdir(parents=True)
    with (out / "._____temp" / "model-00001-of-00003.safetensors").open("wb") as partial:
        partial.truncate(5_000_000_000)  # sparse: 5 GB written as far as sizes go, no disk used
    monkeypatch.setattr(download, "modelscope_snapshot", lambda model_id, folder: calls.append("resumed"))
    with pytest.raises(DownloadError, match="incomplete after the download"):
        download.download_model("Qwen/x", out, None, log=calls.append)
    assert "resumed" in calls
