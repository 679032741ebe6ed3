"""Resume bookkeeping: only COMPLETE checkpoints are resumed; a changed base model, LoRA config, dataset or recipe is
refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.training_test_helpers import quick_args
from training.checkpoints import ResumeRefused, mark_complete, prepare_resume, run_fingerprint, scan_checkpoints


def fake_model(folder: Path, hidden: int = 128) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"hidden_size": hidden}), encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"0" * hidden)
    return folder


def fake_checkpoint(run: Path, step: int, fingerprint: dict | None) -> Path:
    folder = run / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"w")
    if fingerprint is not None:
        (folder / "trainer_state.json").write_text("{}", encoding="utf-8")
        mark_complete(folder, fingerprint)
    return folder


def start_run(tmp_path: Path, **overrides):
    args = quick_args(fake_model(tmp_path / "model"), tmp_path / "d.json", tmp_path, **overrides)
    assert prepare_resume(args, log=lambda _: None) is None  # fresh run: writes the fingerprint
    return args


def test_last_complete_checkpoint_is_resumed_and_incomplete_ones_removed(tmp_path: Path) -> None:
    args = start_run(tmp_path)
    run = Path(args.output_dir)
    fake_checkpoint(run, 4, run_fingerprint(args))
    fake_checkpoint(run, 8, run_fingerprint(args))
    half = fake_checkpoint(run, 12, None)  # killed while saving: no marker, no trainer_state.json
    messages: list[str] = []
    assert prepare_resume(args, log=messages.append) == run / "checkpoint-8"
    assert any("skipping incomplete checkpoint checkpoint-12" in m for m in messages)
    assert not half.exists()
    assert [p.name for p in scan_checkpoints(run)[0]] == ["checkpoint-4", "checkpoint-8"]


def test_changed_lora_config_is_refused(tmp_path: Path) -> None:
    args = start_run(tmp_path)
    fake_checkpoint(Path(args.output_dir), 4, run_fingerprint(args))
    changed = quick_args(Path(args.model_name_or_path), tmp_path / "d.json", tmp_path, lora_r=4, lora_alpha=8)
    with pytest.raises(ResumeRefused, match=r"r: checkpoint has 8, config asks for 4") as error:
        prepare_resume(changed, log=lambda _: None)
    assert "alpha" in str(error.value) and "--output_dir" in str(error.value)


def test_changed_base_model_is_refused(tmp_path: Path) -> None:
    args = start_run(tmp_path)
    fake_checkpoint(Path(args.output_dir), 4, run_fingerprint(args))
    other = quick_args(fake_model(tmp_path / "other", hidden=256), tmp_path / "d.json", tmp_path)
    with pytest.raises(ResumeRefused, match="base model"):
        prepare_resume(other, log=lambda _: None)


def test_full_vs_lora_is_refused(tmp_path: Path) -> None:
    args = start_run(tmp_path)
    fake_checkpoint(Path(args.output_dir), 4, run_fingerprint(args))
    full = quick_args(Path(args.model_name_or_path), tmp_path / "d.json", tmp_path, finetune_type="full")
    with pytest.raises(ResumeRefused, match="finetune_type"):
        prepare_resume(full, log=lambda _: None)


def test_switching_to_distilled_thinking_is_refused(tmp_path: Path) -> None:
    args = start_run(tmp_path)
    fake_checkpoint(Path(args.output_dir), 4, run_fingerprint(args))
    distilled = quick_args(Path(args.model_name_or_path), tmp_path / "d.json", tmp_path, thinking="distill")
    with pytest.raises(ResumeRefused, match=r"thinking: checkpoint has None, config asks for 'distill/blind'"):
        prepare_resume(distilled, log=lambda _: None)


def test_another_dataset_is_refused_and_an_older_run_folder_still_resumes(tmp_path: Path) -> None:
    (tmp_path / "d.json").write_text('[{"instruction": "a", "input": "", "output": "b"}]', encoding="utf-8")
    args = start_run(tmp_path)
    run = Path(args.output_dir)
    fake_checkpoint(run, 4, run_fingerprint(args))
    assert prepare_resume(args, log=lambda _: None) == run / "checkpoint-4"  # the same data resumes
    (tmp_path / "mine.json").write_text('[{"instruction": "c", "input": "", "output": "d"}]', encoding="utf-8")
    mine = quick_args(Path(args.model_name_or_path), tmp_path / "mine.json", tmp_path)
    with pytest.raises(ResumeRefused, match="dataset: the checkpoints were trained on another dataset file"):
        prepare_resume(mine, log=lambda _: None)
    fingerprint = run / "run_fingerprint.json"
    older = json.loads(fingerprint.read_text(encoding="utf-8"))
    del older["data"]  # written before the dataset was recorded
    fingerprint.write_text(json.dumps(older), encoding="utf-8")
    assert prepare_resume(args, log=lambda _: None) == run / "checkpoint-4"


def test_another_recipe_is_refused_a_longer_run_resumes_and_an_older_folder_still_resumes(tmp_path: Path) -> None:
    args = start_run(tmp_path)
    run = Path(args.output_dir)
    fake_checkpoint(run, 4, run_fingerprint(args))
    model, data = Path(args.model_name_or_path), tmp_path / "d.json"
    longer = quick_args(model, data, tmp_path, max_steps=16)  # train on: the same recipe, more steps
    assert prepare_resume(longer, log=lambda _: None) == run / "checkpoint-4"
    changed = quick_args(model, data, tmp_path, learning_rate=2e-4, system_prompt="你是甄嬛")
    with pytest.raises(ResumeRefused, match=r"learning_rate: checkpoint has 0.005, config asks for 0.0002") as error:
        prepare_resume(changed, log=lambda _: None)
    assert "system_prompt" in str(error.value)
    fingerprint = run / "run_fingerprint.json"
    older = json.loads(fingerprint.read_text(encoding="utf-8"))
    del older["recipe"]  # written before the recipe was recorded
    fingerprint.write_text(json.dumps(older), encoding="utf-8")
    assert prepare_resume(changed, log=lambda _: None) == run / "checkpoint-4"


def test_another_example_set_is_refused_and_an_older_folder_without_those_keys_still_resumes(tmp_path: Path) -> None:
    args = start_run(tmp_path, max_answer_chars=40)
    run = Path(args.output_dir)
    fake_checkpoint(run, 4, run_fingerprint(args))
    model, data = Path(args.model_name_or_path), tmp_path / "d.json"
    other_rows = quick_args(model, data, tmp_path, max_answer_chars=80)
    with pytest.raises(ResumeRefused, match=r"max_answer_chars: checkpoint has 40, config asks for 80"):
        prepare_resume(other_rows, log=lambda _: None)
    fingerprint = run / "run_fingerprint.json"
    older = json.loads(fingerprint.read_text(encoding="utf-8"))
    del older["recipe"]["max_answer_chars"]  # written before max_answer_chars was recorded
    fingerprint.write_text(json.dumps(older), encoding="utf-8")
    assert prepare_resume(other_rows, log=lambda _: None) == run / "checkpoint-4"


def test_other_distillation_settings_are_refused_and_only_matter_when_distilling(tmp_path: Path) -> None:
    args = start_run(tmp_path, thinking="distill", distill_max_thinking_tokens=512)
    run = Path(args.output_dir)
    fake_checkpoint(run, 4, run_fingerprint(args))
    model, data = Path(args.model_name_or_path), tmp_path / "d.json"
    other_budget = quick_args(model, data, tmp_path, thinking="distill", distill_max_thinking_tokens=768,
                              distill_temperature=0.9)  # fmt: skip
    with pytest.raises(ResumeRefused, match=r"distill_max_thinking_tokens: checkpoint has 512, config asks for 768"):
        prepare_resume(other_budget, log=lambda _: None)
    engine_only = quick_args(model, data, tmp_path, thinking="distill", distill_max_thinking_tokens=512,
                             distill_engine="local", distill_concurrency=4,
                             distill_base_url="http://127.0.0.1:43117/v1")  # fmt: skip  # launch.sh's next free port
    assert prepare_resume(engine_only, log=lambda _: None) == run / "checkpoint-4"  # the same thinker and cache
    assert "distill_temperature" not in run_fingerprint(quick_args(model, data, tmp_path))["recipe"]


@pytest.mark.parametrize("eval_ratio", [0.1, 0.0])
def test_a_run_folder_from_before_the_content_split_is_refused_only_when_rows_are_held_out(
    tmp_path: Path, eval_ratio: float
) -> None:
    args = start_run(tmp_path, eval_ratio=eval_ratio)
    run = Path(args.output_dir)
    fake_checkpoint(run, 4, run_fingerprint(args))
    fingerprint = run / "run_fingerprint.json"
    older = json.loads(fingerprint.read_text(encoding="utf-8"))
    del older["split"]  # written by a version that held out rows by shuffling positions
    fingerprint.write_text(json.dumps(older), encoding="utf-8")
    if eval_ratio:
        with pytest.raises(ResumeRefused, match="held-out split: the checkpoints were trained by an older version"):
            prepare_resume(args, log=lambda _: None)
    else:
        assert prepare_resume(args, log=lambda _: None) == run / "checkpoint-4", "nothing held out: nothing mixed"
