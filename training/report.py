"""Run report: metrics.json (loss per step, runtime, throughput) and loss_curve.png from the Trainer's log history.

`build_metrics(log_history, ...)` turns the Trainer's log entries into one JSON-able dict;
`plot_loss_curve(metrics, path)` draws train and eval loss against the optimizer step (matplotlib, Agg).

A resumed run's log history and token count start from the checkpoint, but its runtime covers only this session:
tokens/s divides the tokens seen in this session (`session_start_callback` notes the count at the start) by it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def build_metrics(
    log_history: list[dict[str, Any]], extra: dict[str, Any] | None = None, tokens_seen_before: int = 0
) -> dict[str, Any]:
    """train_loss/eval_loss per step, the final train metrics, and anything in `extra` (data counts...).

    `tokens_seen_before`: the tokens a resumed run had already seen at the checkpoint (0 for a fresh run)."""
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
    metrics["tokens_seen"] = tokens_seen  # the whole run's, sessions before a resume included
    session_tokens = tokens_seen - tokens_seen_before if tokens_seen is not None else None
    runtime = metrics["train_runtime_s"]  # this session's
    metrics["train_tokens_per_second"] = round(session_tokens / runtime, 2) if session_tokens and runtime else None
    metrics.update(extra or {})
    return metrics


def session_start_callback():
    """A TrainerCallback whose `tokens_seen_before` is the token count when training began (restored on a resume)."""
    from transformers import TrainerCallback

    class SessionStart(TrainerCallback):
        tokens_seen_before = 0

        def on_train_begin(self, args, state, control, **kwargs):
            self.tokens_seen_before = state.num_input_tokens_seen
            return control

    return SessionStart()


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
