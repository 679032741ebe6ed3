"""TrainArgs: every field has help, YAML + CLI overrides, unknown fields and bad values are refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT
from training.config import DEFAULT_SYSTEM_PROMPT, TrainArgs, build_parser, parse_args


def test_every_field_has_a_help_string() -> None:
    for item in dataclasses.fields(TrainArgs):
        assert item.metadata.get("help"), f"{item.name} has no help"
    assert "--lora_target_modules" in build_parser().format_help()


def test_yaml_then_cli_overrides(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("learning_rate: 3.0e-4\nlora_r: 4\nlora_target_modules: [q_proj, v_proj]\n", encoding="utf-8")
    args = parse_args(["--config", str(config), "--lora_r", "16", "--gradient_checkpointing", "false"])
    assert args.learning_rate == pytest.approx(3e-4)
    assert args.lora_r == 16
    assert args.lora_target_modules == ["q_proj", "v_proj"]
    assert args.gradient_checkpointing is False
    assert args.system_prompt == DEFAULT_SYSTEM_PROMPT
    assert parse_args(["--lora_target_modules", "q_proj,k_proj"]).lora_target_modules == ["q_proj", "k_proj"]


def test_unknown_yaml_field_is_named(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("learning_rat: 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="learning_rat"):
        parse_args(["--config", str(config)])


def test_invalid_values_are_all_listed() -> None:
    with pytest.raises(ValueError) as error:
        parse_args(["--finetune_type", "qlora", "--eval_ratio", "1.5", "--warmup_ratio", "3"])
    for name in ("finetune_type", "eval_ratio", "warmup_ratio"):
        assert name in str(error.value)


@pytest.mark.parametrize("name", ["lora_qwen3_4b_thinking", "full_qwen3_0_6b", "lora_tiny"])
def test_shipped_configs_parse(name: str) -> None:
    args = parse_args(["--config", str(REPO_ROOT / "configs" / f"{name}.yaml")])
    assert args.finetune_type == ("full" if name.startswith("full") else "lora")


def test_seed_recipe_config() -> None:
    args = parse_args(["--config", str(REPO_ROOT / "configs" / "lora_qwen3_4b_thinking.yaml")])
    assert (args.lora_r, args.lora_alpha, args.lora_dropout) == (8, 32, 0.1)
    assert set(args.lora_target_modules) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    assert (args.learning_rate, args.num_train_epochs, args.max_length) == (1e-4, 3, 1024)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (8, 2)
    assert (args.eval_ratio, args.eval_steps, args.save_steps, args.save_total_limit) == (0.1, 50, 100, 3)
    assert args.load_best_model_at_end and args.gradient_checkpointing and args.precision == "auto"
    assert args.checkpoint_only_if_needed  # off on a card where the run fits without it (bench/README.md)


def test_save_steps_off_the_evaluations_is_refused_before_any_work() -> None:
    seed_recipe = ["--config", str(REPO_ROOT / "configs" / "lora_qwen3_4b_thinking.yaml")]
    with pytest.raises(ValueError) as error:
        parse_args([*seed_recipe, "--eval_steps", "30"])
    assert str(error.value).splitlines()[1].strip() == (
        "save_steps (100) must be a multiple of eval_steps (30) with load_best_model_at_end (the best checkpoint is "
        "chosen at evaluations): set --save_steps 90, an --eval_steps that divides 100, or --load_best_model_at_end "
        "false"
    )
    parse_args([*seed_recipe, "--eval_steps", "25"])  # 100 is a multiple of 25
    parse_args([*seed_recipe, "--eval_steps", "30", "--load_best_model_at_end", "false"])  # no best checkpoint
    parse_args([*seed_recipe, "--eval_steps", "30", "--eval_ratio", "0"])  # no evaluation: nothing to pick from


@pytest.mark.parametrize(
    ("eval_steps", "save_steps", "load_best", "eval_ratio"),
    [(30, 100, True, 0.1), (25, 100, True, 0.1), (30, 100, False, 0.1), (30, 100, True, 0.0)],
)
def test_the_save_eval_rule_is_the_one_transformers_applies(
    tmp_path: Path, eval_steps: int, save_steps: int, load_best: bool, eval_ratio: float
) -> None:
    from training.train import training_arguments

    args = TrainArgs(output_dir=str(tmp_path), eval_steps=eval_steps, save_steps=save_steps,
                     load_best_model_at_end=load_best, eval_ratio=eval_ratio)  # fmt: skip
    refused_here = refused_by_transformers = False
    try:
        args.validate()
    except ValueError:
        refused_here = True
    try:
        training_arguments(args, "fp32", has_eval=eval_ratio > 0)
    except ValueError:
        refused_by_transformers = True
    assert refused_here == refused_by_transformers
