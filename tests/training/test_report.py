"""training.report: metrics.json's numbers from the Trainer's log history, a resumed run's throughput included."""

from __future__ import annotations

from training.report import build_metrics, session_start_callback

TRAIN_METRICS = {"train_runtime": 10.0, "train_samples_per_second": 8.0, "train_steps_per_second": 0.5, "step": 10}


def history(tokens_at_the_end: int) -> list[dict]:
    """Two logged steps and the final train metrics; the token count is the whole run's, as the Trainer logs it."""
    return [
        {"loss": 2.0, "learning_rate": 1e-4, "epoch": 0.5, "step": 5, "num_input_tokens_seen": tokens_at_the_end // 2},
        {"loss": 1.5, "learning_rate": 1e-4, "epoch": 1.0, "step": 10, "num_input_tokens_seen": tokens_at_the_end},
        {**TRAIN_METRICS, "num_input_tokens_seen": tokens_at_the_end},
    ]


def test_a_fresh_runs_tokens_per_second_is_its_tokens_over_its_runtime() -> None:
    metrics = build_metrics(history(3000))
    assert metrics["tokens_seen"] == 3000 and metrics["train_tokens_per_second"] == 300.0


def test_a_resumed_run_counts_only_the_tokens_of_this_session() -> None:
    metrics = build_metrics(history(3000), tokens_seen_before=2000)  # 2000 tokens were trained before the kill
    assert metrics["train_tokens_per_second"] == 100.0  # 1000 tokens in this session's 10 s, not 3000
    assert metrics["tokens_seen"] == 3000  # the whole run's count stays in the report


def test_no_token_count_or_no_new_tokens_gives_no_throughput() -> None:
    assert build_metrics([TRAIN_METRICS])["train_tokens_per_second"] is None
    assert build_metrics(history(3000), tokens_seen_before=3000)["train_tokens_per_second"] is None


def test_the_session_start_is_the_token_count_the_trainer_begins_with() -> None:
    from transformers import TrainerControl, TrainerState

    callback = session_start_callback()
    assert callback.tokens_seen_before == 0
    callback.on_train_begin(None, TrainerState(num_input_tokens_seen=2000), TrainerControl())  # restored on resume
    assert callback.tokens_seen_before == 2000


def test_the_done_line_names_the_checkpoint_that_was_exported(tmp_path) -> None:
    from tests.support.training_test_helpers import quick_args
    from training.train import summary_line

    metrics = {"eval_loss": [{"eval_loss": 12.4}, {"eval_loss": 6.834}, {"eval_loss": 6.93}], "best_eval_loss": 6.834,
               "train_examples": 288, "total_steps": 60, "train_samples_per_second": 20.5,
               "train_tokens_per_second": 1095.6}  # fmt: skip
    best = quick_args(tmp_path, tmp_path / "d.json", tmp_path, load_best_model_at_end=True)
    assert "eval loss 12.400 -> 6.834 (best, exported)" in summary_line(best, metrics, 29.0)
    last = quick_args(tmp_path, tmp_path / "d.json", tmp_path, load_best_model_at_end=False)
    assert "eval loss 12.400 -> 6.930 (last, exported; best 6.834)" in summary_line(last, metrics, 29.0)
