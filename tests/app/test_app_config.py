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
