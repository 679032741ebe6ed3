"""`python -m app` flags: precedence and the checks that refuse a bad value before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import parse_args, resolve_auth


def test_yaml_then_flags_with_dashes(tmp_path: Path) -> None:
    config = tmp_path / "app.yaml"
    config.write_text("port: 9000\nmax_upload_size: 2mb\n", encoding="utf-8")
    args = parse_args(["--config", str(config), "--max-upload-size", "500kb"])
    assert (args.port, args.max_upload_size) == (9000, "500kb")


@pytest.mark.parametrize("size", ["1.5mb", "big", "10 parsecs", ""])
def test_an_upload_size_gradio_cannot_read_is_refused(size: str) -> None:
    with pytest.raises(ValueError, match="max_upload_size must be a whole number"):
        parse_args(["--max-upload-size", size])


def test_auth_lines_must_be_user_colon_password() -> None:
    assert resolve_auth(parse_args(["--auth", "ann:secret:with:colons"])) == [("ann", "secret:with:colons")]
    with pytest.raises(ValueError, match="user:password"):
        resolve_auth(parse_args(["--auth", "no-colon"]))


def test_model_ids_and_strict_openai_reach_the_engine() -> None:
    from app.__main__ import make_engine

    args = parse_args(["--base-url", "http://127.0.0.1:9/v1", "--base-model", "Qwen/Qwen3-4B-Thinking-2507",
                       "--models", "qwen3:4b,/models/x", "--strict-openai"])  # fmt: skip
    engine = make_engine(args)
    assert engine.base_model == "Qwen/Qwen3-4B-Thinking-2507" and engine.server.strict
    assert engine.given_ids == ["Qwen/Qwen3-4B-Thinking-2507", "qwen3:4b", "/models/x"]


def test_the_parsed_config_itself_builds_the_page(fake_engine) -> None:
    import gradio as gr

    from app.ui import build_demo

    args = parse_args(["--title", "My comparison", "--temperature", "0.3", "--max-new-tokens", "77"])
    demo = build_demo(fake_engine, args)
    sliders = {block.label: block.value for block in demo.blocks.values() if isinstance(block, gr.Slider)}
    assert demo.title == "My comparison"
    assert sliders["temperature"] == 0.3 and sliders["max new tokens"] == 77
