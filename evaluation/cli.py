"""`python -m evaluation`: evaluate an adapter against its base on its held-out rows and write `<adapter>/eval/`.

Every problem a user can meet ends in one `error: ...` line and exit status 1 (no training record, dataset
changed or gone, zero held-out rows, a model that is not served, the engine dying mid-run); rows finished
before a failure are kept and the same command resumes. A reference loss that fails (a reference longer than
the server's context, a server without `prompt_logprobs`) fails no run: the report is written with every
other score, says how many rows lack the loss and why, and a rerun retries those losses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evaluation.config import EvalArgs, parse_eval_args
from evaluation.run import EvalItem, EvalPlan, evaluate
from serving.adapters import weights_sha256
from serving.protocol import BASE_MODEL_ALIAS, EngineError, SamplingParams, folder_of, served_weights, server_url
from training.heldout import HeldoutError, HeldoutRecord, read_heldout, rebuild_heldout


class EvalError(RuntimeError):
    """A problem with what was asked; the message says what to do."""


USER_ERRORS = (EvalError, HeldoutError, EngineError)  # what ends a run with one clear line (command or app)


def log(message: str) -> None:
    print(f"[evaluation] {message}", flush=True)


def adapter_dir(adapters_dir: str | Path, name: str) -> Path:
    """The folder of adapter `name` inside `adapters_dir` (where its held-out record and eval/ report live);
    `name` may be a served name (`huanhuan@2`, a retrained adapter: folder `huanhuan`).

    The app's one way to an adapter's folder: anything but an adapter name (serving.protocol.folder_of: no path
    separator, no `..`) is refused, so a page never reaches outside the configured adapters folder.
    """
    folder = folder_of(name)
    if folder is None:
        raise EvalError(f"'{name}' is not an adapter name (a folder name inside the adapters folder)")
    return adapter_folder(EvalArgs(adapter=folder, adapters_dir=str(adapters_dir)))


def adapter_folder(args: EvalArgs) -> Path:
    folder = Path(args.adapter) if os.sep in args.adapter else Path(args.adapters_dir) / args.adapter
    if not (folder / "adapter_config.json").is_file():
        raise EvalError(f"no adapter at {folder} (adapter_config.json missing); see --adapters-dir and --adapter")
    return folder


def base_model_path(args: EvalArgs, folder: Path) -> Path:
    """--model, else the model the adapter was trained on (train_config.yaml, then adapter_config.json)."""
    import json

    import yaml

    candidates = [args.model]
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        trained = yaml.safe_load((folder / "train_config.yaml").read_text(encoding="utf-8"))
        candidates.append(trained["model_name_or_path"])
    with contextlib.suppress(OSError, ValueError, KeyError):
        candidates.append(json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"])
    for candidate in filter(None, candidates):
        if (Path(candidate) / "config.json").is_file():
            return Path(candidate)
    raise EvalError(f"the base model of {folder} is not found here (tried {', '.join(filter(None, candidates))}); "
                    "pass its folder with --model")  # fmt: skip


def build_plan(
    args: EvalArgs, record: HeldoutRecord, model: Path, served: str, batched: bool, base: str = BASE_MODEL_ALIAS
) -> EvalPlan:
    from transformers import AutoTokenizer

    from training.examples import build_messages, completion_text

    rows = rebuild_heldout(record, args.dataset or None)
    if not rows:
        raise EvalError("the adapter has zero held-out rows (it was trained with eval_ratio 0); nothing to evaluate. "
                        "Retrain with --eval_ratio 0.1 to hold rows out.")  # fmt: skip
    rows = rows[: args.limit] if args.limit else rows
    tokenizer = AutoTokenizer.from_pretrained(model)
    items = []
    for row in rows:
        prompt, completion = completion_text(tokenizer, build_messages(row, record.system_prompt))
        ids = [list(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in (prompt, completion)]
        items.append(EvalItem(row.where, row.prompt, row.output, (ids[0], ids[1])))
    params = SamplingParams(args.temperature, args.top_p, args.top_k, args.max_tokens, args.seed)
    return EvalPlan(served, items, record.system_prompt, params, args.concurrency, batched, base)


@contextlib.contextmanager
def open_engine(args: EvalArgs, folder: Path, model: Path, served: str) -> Iterator[tuple[Any, Any, str]]:
    """(engine, reference-loss scorer, served base name) for --engine; a vLLM started here is stopped after."""
    from evaluation.refloss import TransformersReferenceLoss
    from serving.factory import create_engine

    if args.engine == "local":
        engine = create_engine("local", model_path=model, adapters={served: folder})
        yield engine, TransformersReferenceLoss.on_engine(engine, served), engine.base_model
        return
    if args.engine == "openai":
        key = os.environ.get(args.api_key_env, "") if args.api_key_env else ""
        engine = create_engine("openai", base_url=args.base_url, api_key=key, base_model=args.base_model or None)
        base = check_served(engine, served, args.base_url)
        yield engine, _engine_loss(args, engine, base, model, folder, served), base
        return
    from serving.gpu_share import gpu_share_beside_others
    from serving.serve_args import ServeArgs
    from serving.vllm_server import VLLMServer

    serve = ServeArgs(model=str(model), adapters_dir=str(folder.parent), api_key_env="",
                      max_model_len=args.max_model_len, cpu_kv_cache_gib=args.cpu_kv_cache_gib,
                      gpu_memory_utilization=gpu_share_beside_others(
                          model, in_process_model=model if args.loss == "transformers" else None))  # fmt: skip
    log(f"starting vLLM on {model} with the adapters of {folder.parent} (log: {serve.log_path or 'logs/'})")
    with VLLMServer(serve) as server:
        engine = server.engine()
        base = check_served(engine, served, server.base_url)
        yield engine, _engine_loss(args, engine, base, model, folder, served), base


def check_served(engine: Any, served: str, where: str, left: str | None = None) -> str:
    """The served base name; EvalError when the base, the adapter (or `left`) is not served there.

    Only what the server itself lists counts: an OpenAIEngine also offers the ids it was given (`listed=False`).
    """
    names = [info.name for info in engine.models() if info.listed]
    base = engine.base_model
    if base not in names:
        raise EvalError(
            f"the base model '{base}' is not served by {where}; it serves: {', '.join(names) or 'nothing'}"
        )
    if served not in names:
        raise EvalError(
            f"the adapter '{served}' is not served by {where} (it serves: {', '.join(names)}); load it (the app's "
            "Adapters panel), or pass --served-adapter NAME when it is served under another name"
        )
    if left and left not in names:
        raise EvalError(f"the model '{left}' is not served by {where} (it serves: {', '.join(names)})")
    return base


def run_evaluation(
    args: EvalArgs, progress: Any = None, stop: Any = None, engine: Any = None, left: str | None = None
) -> Path:
    """Everything after parsing; returns the report folder.

    `progress(phase, done, total)` and `stop` (a threading.Event) are handed to evaluation.run.evaluate; a
    stopped run still writes the report of the rows it finished (marked partial). With `engine` (the app's
    Evaluate tab) that engine is used as it is, nothing is started, and `left` (default: the served base)
    plays the base's part (`left_side`: a model other than the base needs vLLM's reference loss); an
    in-process engine batches, an OpenAI-compatible one gets concurrent requests.
    """
    folder = adapter_folder(args)
    served = args.served_adapter or folder.name
    record = read_heldout(folder)
    model = base_model_path(args, folder)
    if engine is None:
        plan = build_plan(args, record, model, served, batched=args.engine == "local")
        with open_engine(args, folder, model, served) as (opened, loss, base):
            return _run(args, record, plan, folder, (opened, loss, base), progress, stop)
    base = check_served(engine, served, server_url(engine) or "the engine", left)
    side = left_side(args, engine, base, left)
    plan = build_plan(args, record, model, served, batched=server_url(engine) is None, base=side)
    loss = _engine_loss(args, engine, base, model, folder, served)
    return _run(args, record, plan, folder, (engine, loss, left or base), progress, stop)


def left_side(args: EvalArgs, engine: Any, base: str, left: str | None) -> str:
    """The model that plays the base's part: `left`, or the base itself. Another left model needs the reference
    loss from the server (vLLM): the in-process one (transformers) knows only the base and the adapter."""
    if not left or left == base:
        return BASE_MODEL_ALIAS
    if not _loss_on_server(args, engine):
        raise EvalError(f"the left model must be the base '{base}' here: the reference loss is computed in-process, "
                        f"for the base and the adapter only ('{left}' can be compared on vLLM)")  # fmt: skip
    return left


def _engine_loss(args: EvalArgs, engine: Any, base: str, model: Path, folder: Path, served: str) -> Any:
    """vLLM's prompt_logprobs on an OpenAI-compatible engine (unless --loss transformers), else transformers: on a
    LocalEngine's own model, or on a copy loaded here."""
    from evaluation.refloss import TransformersReferenceLoss, VllmReferenceLoss

    if _loss_on_server(args, engine):
        return VllmReferenceLoss(engine.base_url, engine.api_key, base, gate=engine.prefill_gate)
    from serving.local_engine import LocalEngine  # torch: only where the loss is computed here

    if isinstance(engine, LocalEngine):  # the replies' own model: no second copy in memory
        return TransformersReferenceLoss.on_engine(engine, served)
    return TransformersReferenceLoss(model, folder, served)


def _loss_on_server(args: EvalArgs, engine: Any) -> bool:
    return args.loss != "transformers" and server_url(engine) is not None


def resume_settings(
    adapter: str, params: Any, base: str, record: HeldoutRecord, folder: Path, served_sha256: str = "",
    engine: str = "vllm",
) -> dict[str, Any]:  # fmt: skip
    """What decides an evaluation's rows, so its resume key: rows stored under other settings are never reused.
    The adapter counts by its folder and its weights' content, not by the name it is served under: a retrained
    adapter of the same name starts afresh, the same weights served again as `name@3` resume. The content is
    the one the server loaded (`served_sha256`, serving.protocol.served_weights) when it says, else the file on
    disk: a folder trained again after the server loaded it must not file the old weights' replies as new.
    The engine counts by kind (`engine_kind`): rows sampled by a server and rows sampled in-process are never
    mixed in one report, whose `engine` names the one that answered all of them."""
    digest = served_sha256 or weights_sha256(folder) or None
    return {"adapter": folder_of(adapter) or adapter, "adapter_weights_sha256": digest,
            "base": base, "dataset_sha256": record.dataset_sha256, "system_prompt": record.system_prompt,
            "sampling": dataclasses.asdict(params), "engine": engine_kind(engine)}  # fmt: skip


def engine_kind(engine: str) -> str:
    """'in-process' for --engine local (transformers + peft), 'server' for vllm and openai (both an
    OpenAI-compatible server: a run stopped on one resumes on the other)."""
    return "in-process" if engine == "local" else "server"


def _run(args: EvalArgs, record: HeldoutRecord, plan: EvalPlan, folder: Path, opened: tuple[Any, Any, str],
         progress: Any, stop: Any) -> Path:  # fmt: skip
    from evaluation.report import EVAL_DIR, summarize, write_report
    from evaluation.report_place import report_dir
    from evaluation.store import RowStore, fingerprint

    engine, loss, base = opened
    out = Path(args.out_dir) if args.out_dir else folder / EVAL_DIR
    log(f"{len(plan.items)} held-out rows of {record.dataset_path}; engine {args.engine}; report -> {out}")
    on_disk = weights_sha256(folder)  # read once: for the resume key (unless the server says) and the placement
    served = served_weights(engine, plan.adapter) or on_disk
    settings = resume_settings(plan.adapter, plan.params, base, record, folder, served, args.engine)
    store = RowStore(out, fingerprint(settings))
    rows, stats = evaluate(plan, engine, loss, store, progress=progress or _printer(), stop=stop)
    if not rows:
        raise EvalError(f"stopped before any row was answered; what was done is kept in {store.path}")
    log(f"generated {stats.completion_tokens} tokens in {stats.generate_s:.1f} s ({stats.tokens_per_s:.1f} tokens/s); "
        f"{stats.rows_done_before} rows were done before")  # fmt: skip
    missing_loss = [row["where"] for row in rows if "loss" not in row["base"]]
    meta = {
        "adapter": plan.adapter,
        "base_model": base,
        "engine": args.engine,
        "rows_planned": len(plan.items),
        "complete": len(rows) == len(plan.items),  # every row answered (loss_missing says which lack a loss)
        "sampling": str(plan.params),
        "dataset_sha256": record.dataset_sha256,
        "seed": args.seed,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "adapter_weights_sha256": settings["adapter_weights_sha256"],
        "against_base": plan.base == BASE_MODEL_ALIAS,
    }
    if missing_loss:
        meta["loss_missing"] = loss_missing_note(len(missing_loss), len(rows), stats)
        log(meta["loss_missing"])
    report = summarize(rows, meta, args.markers)
    if not args.out_dir:  # the adapter's report stays when this run says less about it (evaluation.report_place)
        out = report_dir(out, report["summary"], on_disk)
    write_report(report, out)
    return out


def loss_missing_note(missing: int, rows: int, stats: Any) -> str:
    """Why `missing` of the report's `rows` have no reference loss, and what to do."""
    if not stats.loss_error:
        return (f"{missing} of {rows} rows have no reference loss: the run was stopped before they were scored; "
                "run the same evaluation again to add them.")  # fmt: skip
    return (
        f"{missing} of {rows} rows have no reference loss (the last failure was {stats.loss_error}). The other "
        "scores cover every row. A rerun retries those losses; one whose reference does not fit the server's "
        "context fails again (a longer --max-model-len, or --loss transformers, scores it)."
    )


def _printer():
    last = [0.0]

    def progress(phase: str, done: int, total: int) -> None:
        if done == total or time.monotonic() - last[0] > 5:
            last[0] = time.monotonic()
            log(f"{'replies' if phase == 'generate' else 'reference loss'}: {done}/{total} rows")

    return progress


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_eval_args(argv)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        out = run_evaluation(args)
    except (*USER_ERRORS, ValueError, OSError) as error:  # a bad template, an unreadable tokenizer or file
        print(f"error: {error}", file=sys.stderr)
        return 1
    from evaluation.report import read_summary

    summary = read_summary(out) or {}
    log(f"{summary.get('headline', '')}\n  report: {out / 'summary.md'}, {out / 'chart.png'}, {out / 'rows.json'}")
    return 0
