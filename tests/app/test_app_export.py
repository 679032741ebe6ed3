"""Unit tests of app.export: JSON keeps everything raw; Markdown quotes thinking and shows answers."""

from __future__ import annotations

import json

from app.conversation import Exchange, Reply, merge_delta
from app.export import to_json, to_markdown, write_export
from serving.protocol import AnswerDelta, ReasoningDelta


def _exchanges() -> list[Exchange]:
    left, right = Reply(model="base"), Reply(model="huanhuan")
    merge_delta(left, ReasoningDelta("line one\nline two"), now=0.1)
    merge_delta(left, AnswerDelta("<b>Answer</b>"), now=0.2)
    merge_delta(right, AnswerDelta("臣妾在"), now=0.2)
    return [Exchange("你好", {"left": left, "right": right})]


def test_json_export_round_trips_thinking_answers_and_settings() -> None:
    document = json.loads(to_json(_exchanges(), {"system_prompt": "persona", "sampling": {"seed": 3}}))
    assert document["system_prompt"] == "persona" and document["sampling"] == {"seed": 3}
    (exchange,) = document["exchanges"]
    assert exchange["user"] == "你好"
    assert exchange["left"]["thinking"] == "line one\nline two" and exchange["left"]["answer"] == "<b>Answer</b>"
    assert exchange["right"]["model"] == "huanhuan" and exchange["right"]["answer"] == "臣妾在"


def test_markdown_export_quotes_thinking(tmp_path) -> None:
    text = to_markdown(_exchanges(), {"system_prompt": "persona"})
    assert "## Turn 1" in text and "**User:** 你好" in text
    assert "> line one\n> line two" in text and "### Left: base" in text and "臣妾在" in text
    path = write_export(_exchanges(), {}, tmp_path, "md")
    assert path.suffix == ".md" and path.read_text(encoding="utf-8").startswith("# Side-by-side")


def test_the_chat_and_the_evaluate_tab_share_one_export_folder(tmp_path) -> None:
    from app.export import export_folder, export_stem

    assert export_folder("") == export_folder("") and export_folder("").is_dir()  # one temporary folder a process
    assert export_folder(str(tmp_path)) == tmp_path
    assert export_stem("evaluation").startswith("evaluation-") and export_stem() != export_stem()
