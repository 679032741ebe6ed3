"""The shared dataclass command line: defaults < YAML < flags, typed values, named errors."""

from __future__ import annotations

from dataclasses import dataclass, field
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


# What transformers' HfArgumentParser does not do (the note in common/dataclass_cli.py; each fails when it does).


@dataclass
class HfExample:
    port: int = field(default=7860, metadata={"help": "port"})
    share: bool = field(default=False, metadata={"help": "share it"})
    names: list[str] = field(default_factory=lambda: ["a"], metadata={"help": "some names"})


def hf_parser():
    from transformers import HfArgumentParser

    return HfArgumentParser(HfExample)


def test_hf_parser_keeps_a_comma_list_as_one_item_where_ours_splits_it() -> None:
    (args,) = hf_parser().parse_args_into_dataclasses(["--names", "p,q"])
    assert args.names == ["p,q"]
    assert parse_config(Example, ["--names", "p,q"], "prog").names == ["p", "q"]


def test_hf_parser_refuses_on_off_booleans_by_exiting() -> None:
    with pytest.raises(SystemExit):
        hf_parser().parse_args_into_dataclasses(["--share", "off"])
    assert parse_config(Example, ["--share", "off"], "prog").share is False


def test_hf_parser_has_no_config_merge_and_does_not_coerce_file_values(tmp_path: Path) -> None:
    config = tmp_path / "x.yaml"
    config.write_text("port: '9000'\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not used by the HfArgumentParser"):
        hf_parser().parse_args_into_dataclasses(["--config", str(config)])
    (from_dict,) = hf_parser().parse_dict({"port": "9000", "names": "b,c"})
    assert (from_dict.port, from_dict.names) == ("9000", "b,c")
    assert parse_config(Example, ["--config", str(config)], "prog").port == 9000


def test_hf_parser_exits_on_a_bad_value_where_ours_raises_a_named_value_error() -> None:
    with pytest.raises(SystemExit):
        hf_parser().parse_args_into_dataclasses(["--port", "eighty"])
    with pytest.raises(ValueError, match="port"):
        parse_config(Example, ["--port", "eighty"], "prog")
