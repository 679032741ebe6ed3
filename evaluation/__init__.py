"""Did the fine-tune work? Base vs adapter on the adapter's own held-out rows, scored with bootstrap intervals.

    python -m evaluation --adapter huanhuan                 # starts vLLM, evaluates, writes <adapter>/eval/

A top-level package rather than `training.evaluate`: it drives the serving engines (the same ones the app
uses) and only reads what training recorded (training.heldout), so it belongs to neither. `evaluate` is
not its name because that is a well-known PyPI package (Hugging Face's) it would shadow.

The Python API (for the app's Evaluate tab): `evaluation.run.evaluate(plan, engine, loss, progress=...,
stop=...)` returns an `EvalResults`; `evaluation.report.write_report(results, folder)` writes it.
"""
