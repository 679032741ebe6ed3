"""The Adapters panel: the serving side's adapter list with its metadata; load, unload, reload BY NAME.

The page sends a name and nothing else: the engine's serving side resolves it in its own adapters folder,
validates it and answers (`Engine.adapters()`, `load_adapter`, `unload_adapter`, `reload_adapter`), so the
app never reads adapter files or sends paths and works the same against a server on another machine. One
action is one call to the engine. A reload is served under a fresh name (`huanhuan@2`); a side that showed
the old name follows it. After every change both model pickers get the new list. While the session is blind, the
sides' models are kept on the server (app.turns.ChatTurns): they follow there, and the pickers keep HIDDEN.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import gradio as gr

from app.config import AppArgs
from app.conversation import SIDES
from app.hidden_names import HIDDEN
from app.turns import ChatTurns
from serving.protocol import AdapterStatus, Engine, EngineError, ModelInfo, folder_of

CHANGED_ON_DISK = " (trained again since it was loaded: Reload to serve the new weights)"
TABLE_HEADERS = ["name", "served as", "rank", "base model", "thinking", "created", "eval loss", "evaluation",
                 "problems"]  # fmt: skip


def build_adapter_panel(
    turns: ChatTurns, settings: AppArgs, pickers: list[gr.Dropdown]
) -> tuple[Callable[[], list[Any]], list[Any]]:
    """The accordion with the adapter table, the name picker and Load/Unload/Reload/Refresh, over the chat's
    `turns` (its engine, and the models of a blind session's sides).

    Returns what the page should run on load to fill the table and both pickers: (function, outputs).
    """
    engine = turns.engine
    with gr.Accordion("Adapters", open=False, elem_id="adapters-panel"):
        gr.Markdown("Adapters in the model server's adapters folder. Only those can be loaded from the page.")
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
    # One adapter change at a time, across all users; the progress tracker on the status line only (QUIET's note).
    limits: dict[str, Any] = {"concurrency_limit": 1, "show_progress_on": [status]}

    def run(session: str, action: str, name: str | None, left: str | None, right: str | None) -> list[Any]:
        message, served = apply_action(engine, action, name)
        move = partial(follow, name=name, served=served)
        moved = moved_pickers(turns, settings, session, (move(left), move(right)), move)
        return [*table_values(engine, name, message), *moved]

    load.click(_with_action(run, "load"), inputs, outputs, api_name="load_adapter", **limits)
    unload.click(_with_action(run, "unload"), inputs, outputs, api_name="unload_adapter", **limits)
    reload.click(_with_action(run, "reload"), inputs, outputs, api_name="reload_adapter", **limits)
    refresh.click(_with_action(run, "refresh"), inputs, outputs, api_name="refresh_adapters", **limits)
    return (lambda: panel_values(engine, settings, None, "", None, None)), outputs


def _with_action(run: Callable[..., list[Any]], action: str) -> Callable[..., list[Any]]:
    """A handler of one action's button (Gradio passes the request to a parameter typed gr.Request)."""

    def handler(request: gr.Request, name: str | None, left: str | None, right: str | None) -> list[Any]:
        return run(request.session_hash or "", action, name, left, right)

    return handler


def apply_action(engine: Engine, action: str, name: str | None) -> tuple[str, str | None]:
    """Load / unload / reload the named adapter with ONE engine call: (status line, new served name or None).
    Never raises: the serving side's refusal (every reason) becomes the status line."""
    if action == "refresh":
        return "Refreshed the adapter list and the served models.", None
    if not name or not isinstance(name, str):
        return "⚠ Choose an adapter first.", None
    try:
        if action == "unload":
            engine.unload_adapter(name)
            return f"Unloaded `{name}`.", None
        if action == "reload":
            served = engine.reload_adapter(name)
            return f"Reloaded `{name}`: now served as `{served}`.", served
        served = engine.load_adapter(name)
        return f"Loaded `{name}` (served as `{served}`).", served
    except EngineError as error:
        return f"⚠ {error}", None


def follow(selected: str | None, name: str | None, served: str | None) -> str | None:
    """A side showing an older served name of the adapter just (re)loaded moves to its new served name."""
    if served and selected and name and folder_of(selected) is not None and folder_of(selected) == folder_of(name):
        return served
    return selected


def panel_values(
    engine: Engine, settings: AppArgs, name: str | None, message: str, left: str | None, right: str | None
) -> list[Any]:
    """[table, adapter choice, status, left picker, right picker] after an action."""
    return [*table_values(engine, name, message), *picker_updates(engine, settings, left, right)]


def table_values(engine: Engine, name: str | None, message: str) -> list[Any]:
    """[table, adapter choice, status] after an action."""
    try:
        statuses, served_error = engine.adapters(), None
    except EngineError as error:
        statuses, served_error = [], str(error)
    rows = [table_row(status) for status in statuses]
    names = [status.name for status in statuses]
    choice = gr.update(choices=names, value=name if name in names else (names[0] if names else None))
    status = message + (f"\n\n⚠ {served_error}" if served_error else "")
    return [rows, choice, status]


def table_row(status: AdapterStatus) -> list[Any]:
    """One table row, as the serving side described the adapter."""
    loss = "" if status.eval_loss is None else f"{status.eval_loss:.4f}"
    rank = "" if status.rank is None else status.rank
    served = status.served_as or ""
    if served and status.changed_on_disk:
        served += CHANGED_ON_DISK
    return [status.name, served, rank, status.base_model or "", status.thinking, status.created,
            loss, status.evaluation, "; ".join(status.problems)]  # fmt: skip


def moved_pickers(
    turns: ChatTurns, settings: AppArgs, session: str, shown: tuple[str | None, str | None],
    move: Callable[[str | None], str | None],
) -> list[Any]:  # fmt: skip
    """gr.update for both pickers after the served models changed: `shown` are the values they are to show (the
    page's, moved to new served names by `move`).

    A picker shown as HIDDEN (what a blind page sends) gets the new choices only: its value stays the page's (HIDDEN
    while blind; the names a vote has just revealed, should the vote come first). While the session is blind, the
    models it keeps for its sides are moved (one no longer served falls back, as a picker's value does) and a picker
    shown named gets HIDDEN.
    """
    served = served_models(turns.engine)  # asked once for both the hidden sides and the pickers
    blind = _move_hidden_sides(turns, settings, session, move, served)
    updates = []
    for value, kwargs in zip(shown, choices_for(served, settings, *shown), strict=True):
        if value == HIDDEN:
            kwargs = {key: kept for key, kept in kwargs.items() if key != "value"}
        elif blind:
            kwargs = {**kwargs, "value": HIDDEN}
        updates.append(gr.update(**kwargs))
    return updates


def _move_hidden_sides(
    turns: ChatTurns, settings: AppArgs, session: str, move: Callable[[str | None], str | None], served: Served
) -> bool:
    """Move the models a blind session keeps for its sides (moved by `move`, checked against `served` when the
    server could be asked); whether it is (still) blind."""
    hidden = turns.blind_models(session)
    if not hidden:
        return False
    moved = {side: move(hidden.get(side)) for side in SIDES}
    choices = choices_for(served, settings, moved["left"], moved["right"])
    kept = {side: kwargs.get("value", moved[side]) for side, kwargs in zip(SIDES, choices, strict=True)}
    return turns.move_blind(session, {side: model for side, model in kept.items() if model})


def picker_updates(engine: Engine, settings: AppArgs, left: str | None, right: str | None) -> list[Any]:
    """gr.update for both pickers (see picker_choices); unchanged when the engine cannot be asked."""
    return [gr.update(**kwargs) for kwargs in picker_choices(engine, settings, left, right)]


def picker_choices(engine: Engine, settings: AppArgs, left: str | None, right: str | None) -> list[dict[str, Any]]:
    """Both pickers' choices: the base, the other models the server offers (ids as it writes them: `org/name`,
    `name:tag`, a path on the server) and every loaded adapter; a selection no longer served falls back.

    The right side defaults to the default adapter (under any served name), else the first adapter, else the
    first other model.
    """
    return choices_for(served_models(engine), settings, left, right)


Served = tuple[str, list[ModelInfo]] | None  # (the base's served name, every model) or None: the server cannot say


def served_models(engine: Engine) -> Served:
    """What the engine serves now, asked once; None when it cannot be asked."""
    try:
        infos = engine.models()
        return engine.base_model, infos
    except EngineError:
        return None


def choices_for(served: Served, settings: AppArgs, left: str | None, right: str | None) -> list[dict[str, Any]]:
    """picker_choices on models already asked for; [{}, {}] (pickers left as they are) when `served` is None."""
    if served is None:
        return [{}, {}]
    base, infos = served
    others = [info.name for info in infos if not info.is_adapter and info.name != base]
    adapters = [info.name for info in infos if info.is_adapter]
    choices = [(f"{base} (base)", base)] + [(name, name) for name in others + adapters]
    names = [base, *others, *adapters]
    default = [name for name in adapters if folder_of(name) == settings.default_adapter]
    default += [name for name in others if name == settings.default_adapter]
    tuned = default[-1:] or [*adapters, *others, base]
    left_value = left if left in names else base
    right_value = right if right in names else tuned[0]
    return [{"choices": choices, "value": left_value}, {"choices": choices, "value": right_value}]
