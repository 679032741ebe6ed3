"""Export a side-by-side conversation to JSON (everything, raw) and Markdown (readable). No Gradio here.

path = write_export(exchanges, meta, out_dir, "json")   # or "md"
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import Any

from app.conversation import SIDES, Exchange, Reply


def to_json(exchanges: list[Exchange], meta: dict[str, Any]) -> str:
    """The whole conversation with thinking, answers, errors and stats per side, plus the settings used."""
    document = {
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **meta,
        "exchanges": [
            {"user": exchange.user, **{side: asdict(reply) for side, reply in exchange.replies.items()}}
            for exchange in exchanges
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=2)


def to_markdown(exchanges: list[Exchange], meta: dict[str, Any]) -> str:
    """A readable transcript: each turn's user message, then each side's thinking (quoted) and answer."""
    lines = ["# Side-by-side conversation", ""]
    if meta.get("system_prompt"):
        lines += ["System prompt:", "", _quote(str(meta["system_prompt"])), ""]
    for number, exchange in enumerate(exchanges, start=1):
        lines += [f"## Turn {number}", "", f"**User:** {exchange.user}", ""]
        for side in SIDES:
            reply = exchange.replies.get(side)
            if reply is not None:
                lines += _reply_markdown(side, reply)
    return "\n".join(lines).rstrip() + "\n"


def _reply_markdown(side: str, reply: Reply) -> list[str]:
    lines = [f"### {side.capitalize()}: {reply.model}", ""]
    if reply.thinking:
        duration = f" ({reply.thinking_s:.1f} s)" if reply.thinking_s is not None else ""
        closed = "" if reply.thinking_closed is not False else ", never closed"
        lines += [f"Thinking{duration}{closed}:", "", _quote(reply.thinking), ""]
    if reply.answer:
        lines += [reply.answer, ""]
    if reply.status == "stopped":
        lines += ["_(stopped)_", ""]
    if reply.error:
        lines += [f"**Error:** {reply.error}", ""]
    return lines


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.splitlines() or [""])


def export_stem(kind: str = "conversation") -> str:
    """A file stem unique across sessions exporting in the same second (the folder is shared)."""
    return f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


@cache
def export_folder(export_dir: str) -> Path:
    """Where the page's exports go: `--export-dir`, or one fresh temporary folder per process when it is empty
    (the chat's and the Evaluate tab's exports share it)."""
    return Path(export_dir) if export_dir else Path(tempfile.mkdtemp(prefix="hh-export-"))


def downloadable(paths: list[Path]) -> list[str]:
    """The exports as the page may offer them: Gradio serves only files under the working directory or the system's
    temp folder (no `allowed_paths` is given: that would serve the whole --export-dir folder to the page). An
    export written elsewhere is offered as a copy in a temp folder; the written file stays where it was asked."""
    roots = [Path(tempfile.gettempdir()).resolve(), Path.cwd().resolve()]
    offered = []
    for path in paths:
        resolved = Path(path).resolve()
        if not any(resolved.is_relative_to(root) for root in roots):
            copy = _download_folder() / resolved.name
            shutil.copyfile(resolved, copy)
            resolved = copy
        offered.append(str(resolved))
    return offered


@cache
def _download_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="hh-download-"))


def write_export(
    exchanges: list[Exchange], meta: dict[str, Any], out_dir: Path, kind: str, stem: str | None = None
) -> Path:
    """Write the export file (kind "json" or "md") into out_dir and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = to_json(exchanges, meta) if kind == "json" else to_markdown(exchanges, meta)
    path = out_dir / f"{stem or export_stem()}.{kind}"
    path.write_text(text, encoding="utf-8")
    return path
