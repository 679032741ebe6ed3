"""The Adapters panel: list the adapters folder with metadata; load, unload, reload through the engine.

Only names listed from the configured adapters folder can be loaded: the page sends a name, the server
looks it up in `AdapterRegistry(adapters_dir).list()` and loads that folder. A path typed by a user is
never forwarded. After every change both model pickers get the new list (their selection is kept when
it is still served).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from app.settings import AppSettings
from evaluation.report import headline as eval_headline
from serving.protocol import EngineError

TABLE_HEADERS = ["name", "loaded", "rank", "base model", "thinking", "created", "eval loss", "evaluation", "problems"]


def build_adapter_panel(
    engine: Any, settings: AppSettings, pickers: list[gr.Dropdown]
) -> tuple[Callable[[], list[Any]], list[Any]]:
    """The accordion with the adapter table, the name picker and Load/Unload/Reload/Refresh.

    Returns what the page should run on load to fill the table and both pickers: (function, outputs).
    """
    with gr.Accordion("Adapters", open=False, elem_id="adapters-panel"):
        folder = str(settings.adapters_dir) if settings.adapters_dir else "(no adapters folder configured)"
        gr.Markdown(f"Adapters folder: `{folder}`. Only adapters in this folder can be loaded from the page.")
        table = gr.Dataframe(headers=TABLE_HEADERS, interactive=False, elem_id="adapter-table", wrap=True)
        with gr.Row():
            choice = gr.Dropdown(label="Adapter", choices=[], elem_id="adapter-choice", allow_custom_value=True)
            load = gr.Button("Load", elem_id="adapter-load")
            unload = gr.Button("Unload", elem_id="adapter-unload")
            reload = gr.Button("Reload", elem_id="adapter-reload")
            refresh = gr.Button("Refresh", elem_id="adapter-refresh")
        status = gr.Markdown(elem_id="adapter-status")
    outputs = [table, choice, status, *pickers]
    inputs = [choice, *pickers]
    limits: dict[str, Any] = {"concurrency_limit": 1}  # one adapter change at a time, across all users

    def run(action: str, name: str | None, left: str | None, right: str | None) -> list[Any]:
        message = apply_action(engine, settings, action, name)
        return panel_values(engine, settings, name, message, left, right)

    load.click(lambda *v: run("load", *v), inputs, outputs, api_name="load_adapter", **limits)
    unload.click(lambda *v: run("unload", *v), inputs, outputs, api_name="unload_adapter", **limits)
    reload.click(lambda *v: run("reload", *v), inputs, outputs, api_name="reload_adapter", **limits)
    refresh.click(lambda *v: run("refresh", *v), inputs, outputs, api_name="refresh_adapters", **limits)
    return (lambda: panel_values(engine, settings, None, "", None, None)), outputs


def registry_infos(settings: AppSettings) -> list[Any]:
    """The adapters in the folder (AdapterInfo: name, path, base_model, rank, created, eval_loss, problems...)."""
    if settings.adapters_dir is None or not settings.adapters_dir.is_dir():
        return []
    from serving.adapters import AdapterRegistry

    registry = AdapterRegistry(settings.adapters_dir, base_model_path=settings.base_model_path,
                               max_rank=settings.max_lora_rank)  # fmt: skip
    return list(registry.list())


def apply_action(engine: Any, settings: AppSettings, action: str, name: str | None) -> str:
    """Load / unload / reload the named adapter; returns a user-facing status line (never raises)."""
    if action == "refresh":
        return "Refreshed the adapters folder and the served models."
    if not name:
        return "⚠ Choose an adapter first."
    try:
        if action == "unload":
            engine.unload_adapter(name)
            return f"Unloaded `{name}`."
        infos = {info.name: info for info in registry_infos(settings)}
        info = infos.get(name)
        if info is None:
            return f"⚠ `{name}` is not an adapter in the adapters folder; only those can be loaded."
        if info.problems:
            return f"⚠ `{name}` cannot be loaded: " + "; ".join(info.problems)
        engine.load_adapter(name, info.path)  # a name already loaded is replaced in place
        return f"{'Reloaded' if action == 'reload' else 'Loaded'} `{name}` from `{info.path}`."
    except EngineError as error:
        return f"⚠ {error}"


def panel_values(
    engine: Any, settings: AppSettings, name: str | None, message: str, left: str | None, right: str | None
) -> list[Any]:
    """[table, adapter choice, status, left picker, right picker] after an action."""
    loaded, served_error = _loaded_adapters(engine)
    infos = registry_infos(settings)
    rows = [_table_row(info, info.name in loaded) for info in infos]
    names = sorted({info.name for info in infos} | loaded)
    choice = gr.update(choices=names, value=name if name in names else (names[0] if names else None))
    status = message + (f"\n\n⚠ {served_error}" if served_error else "")
    return [rows, choice, status, *picker_updates(engine, settings, left, right)]


def _table_row(info: Any, loaded: bool) -> list[Any]:
    created = info.created.strftime("%Y-%m-%d %H:%M") if info.created else ""
    loss = "" if info.eval_loss is None else f"{info.eval_loss:.4f}"
    rank = "" if info.rank is None else info.rank
    evaluation = eval_headline(info.path)  # `python -m evaluation`'s headline, from <adapter>/eval/summary.json
    thinking = info.thinking or ""  # "empty", "distill/blind", ... as training recorded it; "" when unknown
    return [info.name, "yes" if loaded else "no", rank, info.base_model or "", thinking, created, loss, evaluation,
            "; ".join(info.problems)]  # fmt: skip


def _loaded_adapters(engine: Any) -> tuple[set[str], str | None]:
    try:
        return {info.name for info in engine.models() if info.is_adapter}, None
    except EngineError as error:
        return set(), str(error)


def picker_updates(engine: Any, settings: AppSettings, left: str | None, right: str | None) -> list[Any]:
    """gr.update for both pickers (see picker_choices); unchanged when the engine cannot be asked."""
    return [gr.update(**kwargs) for kwargs in picker_choices(engine, settings, left, right)]


def picker_choices(engine: Any, settings: AppSettings, left: str | None, right: str | None) -> list[dict[str, Any]]:
    """Both pickers' choices: the base, the other models the server offers (ids as it writes them: `org/name`,
    `name:tag`, a path on the server) and every loaded adapter; a selection no longer served falls back.

    The right side defaults to the default adapter, else the first adapter, else the first other model.
    """
    try:
        infos = engine.models()
        base = engine.base_model
    except EngineError:
        return [{}, {}]
    others = [info.name for info in infos if not info.is_adapter and info.name != base]
    adapters = [info.name for info in infos if info.is_adapter]
    choices = [(f"{base} (base)", base)] + [(name, name) for name in others + adapters]
    names = [base, *others, *adapters]
    tuned = [name for name in [*adapters, *others] if name == settings.default_adapter] or [*adapters, *others, base]
    left_value = left if left in names else base
    right_value = right if right in names else tuned[0]
    return [{"choices": choices, "value": left_value}, {"choices": choices, "value": right_value}]
