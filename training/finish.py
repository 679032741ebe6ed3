"""End of a run: write the adapter (or full model), train_config.yaml, metrics.json and loss_curve.png atomically.

`export_run(args, trainer, tokenizer, data)` is called by training.train after the Trainer finished (with
the best checkpoint loaded when load_best_model_at_end is on). heldout.json records the held-out split
(training.heldout) so `python -m evaluation` can rebuild it. See training.export for the atomic swap.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training.export import export_atomically
from training.heldout import write_heldout
from training.report import build_metrics, plot_loss_curve


def write_config_yaml(args, path: Path) -> None:
    import yaml

    header = "# Resolved training config of this export (python -m training --config this-file reproduces it)\n"
    path.write_text(header + yaml.safe_dump(args.to_dict(), allow_unicode=True, sort_keys=False), encoding="utf-8")


def run_metrics(args, trainer, data, tokens_seen_before: int = 0) -> dict[str, Any]:
    """metrics.json's content; `tokens_seen_before`: tokens a resumed run had seen at its checkpoint."""
    extra = {
        "finetune_type": args.finetune_type,
        "thinking_mode": args.thinking_label(),
        "distill": data.distill,
        "base_model": str(args.model_name_or_path),
        "dataset_rows": data.total_rows,
        "bad_rows": data.bad_rows,
        "dropped_too_long": len(data.encode.dropped_too_long),
        "train_examples": len(data.train),
        "eval_examples": len(data.eval),
        "token_length_percentiles": data.encode.percentiles(),
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "global_step": trainer.state.global_step,
        "world_size": trainer.args.world_size,  # processes that trained (accelerate launch / torchrun)
    }
    return build_metrics(trainer.state.log_history, extra, tokens_seen_before)


def export_run(args, trainer, tokenizer, data, tokens_seen_before: int = 0) -> dict[str, Any]:
    metrics = run_metrics(args, trainer, data, tokens_seen_before)
    model = trainer.model

    def write_contents(staging: Path) -> None:
        model.save_pretrained(staging, safe_serialization=True)
        if args.finetune_type == "full":
            tokenizer.save_pretrained(staging)
        write_config_yaml(args, staging / "train_config.yaml")
        write_heldout(args, data.eval_rows, staging)
        (staging / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
        plot_loss_curve(
            metrics, staging / "loss_curve.png", title=f"{args.finetune_type}: {Path(args.export_dir).name}"
        )

    export_atomically(Path(args.export_dir), write_contents, args.finetune_type, overwrite=args.overwrite_export)
    return metrics
