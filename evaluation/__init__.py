"""Did the fine-tune work? Base vs adapter on the adapter's own held-out rows, scored with bootstrap intervals.

    python -m evaluation --adapter huanhuan                 # starts vLLM, evaluates, writes <adapter>/eval/

A top-level package rather than `training.evaluate`: it drives the serving engines (the same ones the app
uses) and only reads what training recorded (training.heldout), so it belongs to neither. `evaluate` is
not its name because that is a well-known PyPI package (Hugging Face's) it would shadow.

The Python API (for an Evaluate tab): `evaluation.cli.run_evaluation(EvalArgs(...), progress, stop)` does
what the command does and returns the report folder; underneath, `evaluation.run.evaluate(plan, engine,
loss, store, progress, stop)` returns the finished rows and run stats, `evaluation.report.summarize(rows,
meta, markers)` scores and aggregates them, `write_report` writes `<adapter>/eval/` and `headline(folder)`
reads its one-line summary back. The app's Evaluate tab passes its own engine (`run_evaluation(args, progress,
stop, engine=engine, left=model)`) and reaches an adapter's folder only through `evaluation.cli.adapter_dir(
adapters_dir, name)`.
"""
