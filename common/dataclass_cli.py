"""Dataclass configs on the command line: `--config x.yaml` plus `--field value` overrides.

One dataclass per entry point (TrainArgs, ServeArgs, AppArgs); every field carries a help string. Precedence:
dataclass default < YAML file < command-line flag. Flags take dashes or underscores (`--adapters-dir` =
`--adapters_dir`); booleans accept true/false/yes/no/on/off/1/0 (a bare `--share` means true); lists are
comma-separated. Unknown YAML keys are an error that names them.

    @dataclass
    class ServeArgs:
        port: int = config_field(0, "port to bind; 0 picks a free one")

    args = parse_config(ServeArgs, argv, prog="python -m serving")

Why not transformers' `HfArgumentParser` (tried with transformers 5.19; tests/common/test_dataclass_cli.py
holds each point, so this note fails its test when it stops being true). It does dataclass -> flags, help
texts, bare boolean flags and dash/underscore aliases, but:
- lists are space-separated (`--names p q`); `--names p,q` gives the one item "p,q", and every config,
  README line and test here writes lists comma-separated (`--lora_target_modules q_proj,k_proj`);
- booleans refuse on/off (`--share off` exits);
- there is no `--config FILE` merge: `--config x.yaml` is an unknown argument, `parse_yaml_file` reads the
  file alone, and `parse_dict` does not coerce values (`port: "9000"` stays a string, `names: "b,c"` a
  string), which resuming a run from its saved resolved config relies on (`from_mapping`);
- a bad value exits the process (argparse's SystemExit) instead of raising ValueError naming the field,
  which `python -m app` / `serving` / `training` turn into one clear line;
- importing it imports transformers (about 4-7 s on the 2-core machine, against 0.6 s for this module),
  which `python -m app --engine openai` and `python -m serving` otherwise never import.
A switch would be HfArgumentParser + a comma-list type + a `--config` pre-pass feeding `set_defaults`
+ coercion for saved configs: about as much code as this module, so it stays.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, TypeVar

Config = TypeVar("Config")
TRUE_WORDS = {"1", "true", "yes", "y", "on"}
FALSE_WORDS = {"0", "false", "no", "n", "off"}


def config_field(default: Any, help_text: str) -> Any:
    """A dataclass field with its help string (lists get a fresh copy per instance)."""
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata={"help": help_text})
    return dataclasses.field(default=default, metadata={"help": help_text})


def parse_bool(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def parse_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(item) for item in value]


def _kind(spec: dataclasses.Field) -> str:
    annotation = spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", "str")
    return "list" if annotation.startswith("list") else annotation


def coerce(spec: dataclasses.Field, value: Any) -> Any:
    """A YAML or command-line value turned into the field's type."""
    converters = {"bool": parse_bool, "int": int, "float": float, "list": parse_list}
    return converters.get(_kind(spec), str)(value)


def _default_of(spec: dataclasses.Field) -> Any:
    if spec.default is not dataclasses.MISSING:
        return spec.default
    return spec.default_factory() if spec.default_factory is not dataclasses.MISSING else None


def build_parser(config_class: type, prog: str, description: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description or config_class.__doc__)
    name = config_class.__name__
    parser.add_argument("--config", type=Path, help=f"YAML file with {name} fields (command-line flags override it)")
    for spec in dataclasses.fields(config_class):
        flags = list(dict.fromkeys([f"--{spec.name}", f"--{spec.name.replace('_', '-')}"]))
        help_text = f"{spec.metadata['help']} (default: {_default_of(spec)!r})".replace("%", "%%")
        extra = {"nargs": "?", "const": True} if _kind(spec) == "bool" else {}
        parser.add_argument(*flags, dest=spec.name, default=None, help=help_text, **extra)
    return parser


def load_yaml_fields(config_class: type, path: Path) -> dict[str, Any]:
    """The fields a YAML file sets; anything that is not a mapping of known fields is a ValueError."""
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of {config_class.__name__} fields, got {type(data).__name__}")
    unknown = sorted(set(data) - {spec.name for spec in dataclasses.fields(config_class)})
    if unknown:
        raise ValueError(f"{path}: unknown field(s) {', '.join(unknown)}; see --help")
    return data


def from_mapping(config_class: type[Config], values: dict[str, Any]) -> Config:
    """Build the config from a mapping (e.g. a saved resolved config), coercing each known field."""
    specs = {spec.name: spec for spec in dataclasses.fields(config_class)}
    coerced = {}
    for name, value in values.items():
        if name not in specs:
            continue
        try:
            coerced[name] = coerce(specs[name], value)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as error:
            raise ValueError(f"{name}: {error}") from error
    return config_class(**coerced)


def parse_config(config_class: type[Config], argv: list[str] | None, prog: str) -> Config:
    """Defaults < YAML (`--config`) < flags given. Bad values raise ValueError with the field's name."""
    namespace = build_parser(config_class, prog).parse_args(argv)
    values = load_yaml_fields(config_class, namespace.config) if namespace.config else {}
    values.update({key: value for key, value in vars(namespace).items() if key != "config" and value is not None})
    return from_mapping(config_class, values)
