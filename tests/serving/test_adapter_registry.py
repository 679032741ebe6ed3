"""Unit tests of the adapter registry and validation (serving/adapters.py) on adapters crafted with peft.

Every bad adapter must be refused with its reason, all reasons at once; names and symlinks that lead
outside the adapters folder are refused; folders still being written (dot/temp) are never listed; a folder
that cannot be read or a symlink loop is a problem of that adapter only.

    .venv/bin/python -m pytest tests/serving/test_adapter_registry.py
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from serving.adapters import AdapterRegistry, validate_adapter
from serving.protocol import AdapterError, check_adapter_name
from tests.support.serving_test_helpers import copy_adapter


@pytest.mark.slow  # builds real peft adapters on the tiny model (~10 s the first time)
def test_good_adapter_has_no_problem(good_adapter: Path, tiny_model_dir: Path) -> None:
    assert validate_adapter(good_adapter, base_model_path=tiny_model_dir, max_rank=8) == []


def test_missing_files_are_each_reported(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    problems = validate_adapter(empty)
    assert any("adapter_config.json is missing" in p for p in problems)
    assert any("adapter_model.safetensors is missing" in p for p in problems)


@pytest.mark.slow  # builds real peft adapters on the tiny model (~10 s the first time)
def test_pickled_bin_weights_are_refused(good_adapter: Path, tmp_path: Path) -> None:
    only_bin = copy_adapter(good_adapter, tmp_path / "bin")
    (only_bin / "adapter_model.safetensors").rename(only_bin / "adapter_model.bin")
    problems = validate_adapter(only_bin)
    assert problems == [
        "adapter_model.safetensors is missing (found adapter_model.bin: pickled weights are refused, "
        "save with safetensors)"
    ]
    both = copy_adapter(good_adapter, tmp_path / "both")
    shutil.copy(both / "adapter_model.safetensors", both / "adapter_model.bin")
    assert any("adapter_model.bin is present" in p for p in validate_adapter(both))


@pytest.mark.slow  # builds real peft adapters on the tiny model (~10 s the first time)
def test_rank_above_the_server_limit(make_adapter, tmp_path: Path, tiny_model_dir: Path) -> None:
    wide = make_adapter(tmp_path / "r16", r=16)
    assert validate_adapter(wide, tiny_model_dir, max_rank=8) == ["rank 16 is above the server's limit 8"]
    assert validate_adapter(wide, tiny_model_dir, max_rank=16) == []


@pytest.mark.slow  # builds real peft adapters on the tiny model (~10 s the first time)
def test_wrong_base_model(good_adapter: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    other = copy_adapter(good_adapter, tmp_path / "other", base_model_name_or_path="Qwen/Qwen3-0.6B")
    problems = validate_adapter(other, base_model_path=tiny_model_dir)
    assert len(problems) == 1 and "trained on 'Qwen/Qwen3-0.6B'" in problems[0]


@pytest.mark.slow  # builds real peft adapters on the tiny model (~10 s the first time)
def test_weights_of_another_shape_are_refused(good_adapter: Path, tmp_path: Path) -> None:
    base = tmp_path / "tiny-qwen3"  # same folder name as the real base, but a wider model
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"hidden_size": 1024}))
    problems = validate_adapter(good_adapter, base_model_path=base)
    assert problems == ["weights are for hidden size 128, the base model has 1024"]


@pytest.mark.slow  # builds real peft adapters on the tiny model (~10 s the first time)
def test_modules_to_save_dora_and_bias_are_all_reported_at_once(make_adapter, tmp_path: Path) -> None:
    dora = make_adapter(tmp_path / "dora", use_dora=True, modules_to_save=["lm_head"], bias="lora_only")
    problems = validate_adapter(dora)
    assert any("modules_to_save ['lm_head']" in p for p in problems)
    assert any("DoRA" in p for p in problems)
    assert any("bias must be 'none'" in p for p in problems)


@pytest.mark.slow  # builds real peft adapters on the tiny model (~10 s the first time)
@pytest.mark.parametrize("content", ["{", "[1, 2]", ""])
def test_bad_json_is_reported(good_adapter: Path, tmp_path: Path, content: str) -> None:
    broken = copy_adapter(good_adapter, tmp_path / "broken")
    (broken / "adapter_config.json").write_text(content)
    problems = validate_adapter(broken)
    assert len(problems) == 1 and "adapter_config.json" in problems[0]


@pytest.mark.slow  # builds real peft adapters on the tiny model (~10 s the first time)
def test_truncated_weights_are_reported(good_adapter: Path, tmp_path: Path) -> None:
    cut = copy_adapter(good_adapter, tmp_path / "cut")
    (cut / "adapter_model.safetensors").write_bytes(b"\x10\x00")
    assert any("not a readable safetensors file" in p for p in validate_adapter(cut))


@pytest.mark.parametrize("name", ["../../x", "/etc", "a/b", ".hidden", "", "x" * 65, "..", "名字"])
def test_bad_names_are_refused(name: str) -> None:
    assert check_adapter_name(name)


@pytest.mark.slow  # builds real peft adapters on the tiny model (~10 s the first time)
def test_registry_lists_metadata_and_skips_half_written_folders(good_adapter: Path, tmp_path: Path) -> None:
    adapters = tmp_path / "adapters"
    copy_adapter(good_adapter, adapters / "huanhuan")
    (adapters / "huanhuan" / "metrics.json").write_text(json.dumps({"eval_loss": 1.25, "train_loss": 2.0}))
    copy_adapter(good_adapter, adapters / "wide", r=64)
    copy_adapter(good_adapter, adapters / ".huanhuan-export-tmp")  # an export still being written
    (adapters / "notes.txt").write_text("not an adapter")
    registry = AdapterRegistry(adapters, max_rank=8)
    infos = {info.name: info for info in registry.list()}
    assert sorted(infos) == ["huanhuan", "wide"]
    assert infos["huanhuan"].valid and infos["huanhuan"].rank == 8 and infos["huanhuan"].eval_loss == 1.25
    assert infos["huanhuan"].created is not None and infos["huanhuan"].base_model.endswith("tiny-qwen3")
    assert infos["wide"].problems == ["rank 64 is above the server's limit 8"]
    assert [info.name for info in registry.valid()] == ["huanhuan"]
    assert registry.largest_rank() == 64


@pytest.mark.slow  # builds real peft adapters on the tiny model (~10 s the first time)
def test_symlink_outside_the_adapters_folder_is_refused(good_adapter: Path, tmp_path: Path) -> None:
    adapters = tmp_path / "adapters"
    adapters.mkdir()
    os.symlink(good_adapter, adapters / "escape")
    registry = AdapterRegistry(adapters)
    with pytest.raises(AdapterError, match="outside the adapters folder"):
        registry.resolve("escape")
    assert "outside the adapters folder" in registry.info("escape").problems[0]
    with pytest.raises(AdapterError, match="not a valid adapter name"):
        registry.resolve("../good")


def test_an_unreadable_folder_is_a_problem_of_that_adapter_only(tmp_path: Path, monkeypatch) -> None:
    adapters = tmp_path / "adapters"
    for name in ("locked", "open"):
        (adapters / name).mkdir(parents=True)
        (adapters / name / "adapter_config.json").write_text(json.dumps({"r": 8}))
    plain_is_file = Path.is_file

    def is_file_as_another_user(path: Path) -> bool:  # Python 3.11 raises on a folder it may not enter
        if "locked" in path.parts:
            raise PermissionError(13, "Permission denied", str(path))
        return plain_is_file(path)

    monkeypatch.setattr(Path, "is_file", is_file_as_another_user)
    registry = AdapterRegistry(adapters)
    infos = {info.name: info for info in registry.list()}
    assert sorted(infos) == ["locked", "open"]
    [problem] = infos["locked"].problems
    assert problem.startswith("its folder cannot be read (") and "Permission denied" in problem
    assert infos["open"].rank == 8 and registry.largest_rank() == 8


def test_a_symlink_loop_is_refused_with_its_reason(tmp_path: Path) -> None:
    adapters = tmp_path / "adapters"
    adapters.mkdir()
    os.symlink(adapters / "b", adapters / "a")
    os.symlink(adapters / "a", adapters / "b")
    registry = AdapterRegistry(adapters)
    with pytest.raises(AdapterError, match="cannot be resolved"):
        registry.resolve("a")
    assert "cannot be resolved" in registry.info("a").problems[0]
    assert registry.list() == []


@pytest.mark.parametrize(
    ("name", "served_base"), [("base", None), ("BASE", "tiny"), ("tiny", "tiny"), ("Tiny", "tiny")]
)
def test_names_of_the_base_model_are_refused(name: str, served_base: str | None) -> None:
    assert check_adapter_name(name, served_base) == [
        f"'{name}' is the base model's name, so the adapter would never be used (the base model answers for it); "
        f"give the adapter (its folder) another name, e.g. '{name}-lora'"
    ]


def test_other_names_are_accepted_next_to_a_served_base() -> None:
    assert check_adapter_name("huanhuan", "tiny") == [] and check_adapter_name("base-lora", "tiny") == []


def test_a_rank_gets_the_smallest_limit_vllm_accepts_that_serves_it() -> None:
    from serving.adapters import vllm_rank_for

    assert [vllm_rank_for(rank) for rank in (1, 2, 8, 9, 64, 300, 512, 513)] == [1, 8, 8, 16, 64, 320, 512, None]
