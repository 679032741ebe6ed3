"""The shared dataclass command line: defaults < YAML < flags, typed values, named errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from common.dataclass_cli import config_field, parse_config


@dataclass
class Example:
    """An entry point's config."""

    port: int = config_field(7860, "port")
    rate: float = config_field(0.5, "a rate")
    share: bool = config_field(False, "share it")
    names: list[str] = config_field(["a"], "some names")
    adapters_dir: str = config_field("Models/adapters", "a folder")


def test_defaults_then_yaml_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "x.yaml"
    config.write_text("port: 9000\nrate: 0.25\nnames: [b, c]\n", encoding="utf-8")
    args = parse_config(Example, ["--config", str(config), "--port", "9001", "--share"], "prog")
    assert (args.port, args.rate, args.share, args.names) == (9001, 0.25, True, ["b", "c"])
    assert parse_config(Example, [], "prog") == Example()


def test_dashes_or_underscores_lists_and_booleans() -> None:
    args = parse_config(Example, ["--adapters-dir", "x", "--names", "p, q", "--share", "off"], "prog")
    assert (args.adapters_dir, args.names, args.share) == ("x", ["p", "q"], False)
    assert parse_config(Example, ["--adapters_dir", "y"], "prog").adapters_dir == "y"


def test_defaults_are_not_shared_between_instances() -> None:
    first, second = Example(), Example()
    first.names.append("z")
    assert second.names == ["a"]


def test_bad_values_and_unknown_yaml_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="port"):
        parse_config(Example, ["--port", "eighty"], "prog")
    config = tmp_path / "x.yaml"
    config.write_text("prot: 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="prot"):
        parse_config(Example, ["--config", str(config)], "prog")
    config.write_text("- just a list\n", encoding="utf-8")
    with pytest.raises(ValueError, match="mapping"):
        parse_config(Example, ["--config", str(config)], "prog")
