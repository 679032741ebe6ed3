"""Run report: metrics.json (loss per step, runtime, throughput) and loss_curve.png from the Trainer's log history.

`build_metrics(log_history, ...)` turns the Trainer's log entries into one JSON-able dict;
`plot_loss_curve(metrics, path)` draws train and eval loss against the optimizer step (matplotlib, Agg).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def build_metrics(log_history: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """train_loss/eval_loss per step, the final train metrics, and anything in `extra` (data counts...)."""
    train = [
        {"step": e["step"], "loss": e["loss"], "learning_rate": e.get("learning_rate"), "epoch": e.get("epoch")}
        for e in log_history
        if "loss" in e and "step" in e
    ]
    evaluation = [{"step": e["step"], "eval_loss": e["eval_loss"]} for e in log_history if "eval_loss" in e]
    final = next((e for e in reversed(log_history) if "train_runtime" in e), {})
    metrics: dict[str, Any] = {
        "train_loss": train,
        "eval_loss": evaluation,
        "final_eval_loss": evaluation[-1]["eval_loss"] if evaluation else None,
        "best_eval_loss": min((e["eval_loss"] for e in evaluation), default=None),
        "train_runtime_s": final.get("train_runtime"),
        "train_samples_per_second": final.get("train_samples_per_second"),
        "train_steps_per_second": final.get("train_steps_per_second"),
        "total_steps": final.get("step"),
    }
    tokens_seen = next(
        (e["num_input_tokens_seen"] for e in reversed(log_history) if "num_input_tokens_seen" in e), None
    )
    metrics["tokens_seen"] = tokens_seen
    runtime = metrics["train_runtime_s"]
    metrics["train_tokens_per_second"] = round(tokens_seen / runtime, 2) if tokens_seen and runtime else None
    metrics.update(extra or {})
    return metrics


def plot_loss_curve(metrics: dict[str, Any], path: Path, title: str = "training loss") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    if metrics["train_loss"]:
        axes.plot(
            [e["step"] for e in metrics["train_loss"]], [e["loss"] for e in metrics["train_loss"]], label="train"
        )
    if metrics["eval_loss"]:
        steps = [e["step"] for e in metrics["eval_loss"]]
        axes.plot(steps, [e["eval_loss"] for e in metrics["eval_loss"]], marker="o", label="eval")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
