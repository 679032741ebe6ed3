"""serving.adapter_service: names resolved in the adapters folder, validated once under one lock per name,
a reload served under a fresh name with the old one unloaded, every refusal with all its reasons.

The backend here is a recorder standing in for the model that holds the adapters (vLLM or peft); the real
ones are exercised in test_vllm_integration.py and test_adapter_races.py.

    .venv/bin/python -m pytest tests/serving/test_adapter_service.py
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from common.file_hash import file_sha256
from serving.adapter_service import AdapterService
from serving.adapters import WEIGHTS_FILE, AdapterRegistry
from serving.protocol import AdapterError
from tests.support.serving_test_helpers import write_adapter


class Recorder:
    """Adapter slots of a model: served name -> path; records every load and unload."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.slots: dict[str, Path] = {}
        self.calls: list[tuple[str, str]] = []
        self.delay_s = delay_s
        self.fail = fail

    def loaded(self) -> list[str]:
        return list(self.slots)

    def load(self, served_name: str, path: Path) -> None:
        self.calls.append(("load", served_name))
        time.sleep(self.delay_s)
        if self.fail:
            raise AdapterError(f"vLLM could not load adapter '{served_name}': simulated")
        self.slots[served_name] = path

    def unload(self, served_name: str) -> None:
        self.calls.append(("unload", served_name))
        del self.slots[served_name]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_adapter(tmp_path / "adapters" / "huanhuan")
    return tmp_path / "adapters"


def service_on(folder: Path, backend: Recorder) -> AdapterService:
    return AdapterService(AdapterRegistry(folder, max_rank=8), backend)


def test_load_serves_the_folder_name_and_a_second_load_changes_nothing(folder: Path) -> None:
    backend = Recorder()
    service = service_on(folder, backend)
    assert service.load("huanhuan") == "huanhuan"
    assert service.load("huanhuan") == "huanhuan"
    assert backend.calls == [("load", "huanhuan")]
    assert backend.slots["huanhuan"] == (folder / "huanhuan").resolve()


def test_reload_serves_a_fresh_name_and_unloads_the_old_one(folder: Path) -> None:
    backend = Recorder()
    service = service_on(folder, backend)
    service.load("huanhuan")
    assert service.reload("huanhuan") == "huanhuan@2"
    assert list(backend.slots) == ["huanhuan@2"]
    assert service.reload("huanhuan@2") == "huanhuan@3"  # a served name means its folder
    assert list(backend.slots) == ["huanhuan@3"]
    service.unload("huanhuan")  # the folder name unloads whatever serves it
    assert backend.slots == {}
    assert service.load("huanhuan") == "huanhuan@4", "a served name is never used twice"


def test_a_served_name_keeps_the_weights_it_was_loaded_from_after_the_folder_is_trained_again(folder: Path) -> None:
    service = service_on(folder, Recorder())
    weights = folder / "huanhuan" / WEIGHTS_FILE
    first = file_sha256(weights)
    assert service.statuses()[0].weights_sha256 == "", "not loaded: no weights"
    service.load("huanhuan")
    weights.write_bytes(weights.read_bytes() + b"trained again")  # an export into the same folder
    (status,) = service.statuses()
    assert (status.served_as, status.weights_sha256) == ("huanhuan", first), "what the served name answers with"
    assert status.changed_on_disk, "the panel must say that a Reload would serve other weights"
    service.reload("huanhuan")
    (status,) = service.statuses()
    assert (status.served_as, status.weights_sha256) == ("huanhuan@2", file_sha256(weights))
    assert not status.changed_on_disk


def test_a_failed_reload_keeps_the_old_served_name(folder: Path) -> None:
    backend = Recorder()
    service = service_on(folder, backend)
    service.load("huanhuan")
    backend.fail = True
    with pytest.raises(AdapterError, match="simulated"):
        service.reload("huanhuan")
    assert list(backend.slots) == ["huanhuan"]


def test_a_broken_adapter_is_refused_with_every_reason_and_nothing_loads(folder: Path) -> None:
    broken = write_adapter(folder / "broken", r=16, use_dora=True, modules_to_save=["lm_head"])
    (broken / "adapter_model.bin").write_bytes(b"pickle")
    backend = Recorder()
    with pytest.raises(AdapterError) as refused:
        service_on(folder, backend).load("broken")
    for reason in ("rank 16 is above the server's limit 8", "DoRA", "modules_to_save", "pickled weights"):
        assert reason in str(refused.value)
    assert backend.calls == []


@pytest.mark.parametrize("name", ["../huanhuan", "/tmp/evil", "huanhuan/..", ".hidden", "a@0", "nothing-here"])
def test_names_outside_the_folder_or_not_in_it_are_refused(folder: Path, name: str) -> None:
    backend = Recorder()
    with pytest.raises(AdapterError, match=r"not a valid adapter name|no adapter 'nothing-here'"):
        service_on(folder, backend).load(name)
    assert backend.calls == []


def test_a_symlink_leading_outside_the_folder_is_refused(folder: Path, tmp_path: Path) -> None:
    (folder / "escape").symlink_to(write_adapter(tmp_path / "elsewhere"))
    with pytest.raises(AdapterError, match="outside the adapters folder"):
        service_on(folder, Recorder()).load("escape")


def test_concurrent_loads_of_one_name_validate_and_load_once(folder: Path, monkeypatch) -> None:
    backend = Recorder(delay_s=0.05)
    service = service_on(folder, backend)
    validations = []
    real_info = service.registry.info
    monkeypatch.setattr(service.registry, "info", lambda name: validations.append(name) or real_info(name))
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(service.load("huanhuan"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["huanhuan"] * 8
    assert backend.calls == [("load", "huanhuan")] and validations == ["huanhuan"]


def test_statuses_show_served_names_metadata_and_adapters_loaded_from_elsewhere(folder: Path) -> None:
    (folder / "huanhuan" / "metrics.json").write_text(json.dumps({"final_eval_loss": 1.25, "thinking_mode": "empty"}))
    write_adapter(folder / "idle")
    backend = Recorder()
    backend.slots["thinker"] = Path("/somewhere/else")
    service = service_on(folder, backend)
    service.reload("huanhuan")
    statuses = {status.name: status for status in service.statuses()}
    assert statuses["huanhuan"].served_as == "huanhuan" and statuses["huanhuan"].eval_loss == 1.25
    assert statuses["huanhuan"].thinking == "empty" and statuses["huanhuan"].rank == 8
    assert not statuses["idle"].loaded and statuses["idle"].problems == ()
    assert statuses["thinker"].loaded and not statuses["thinker"].in_folder


def test_unloading_a_name_that_is_not_loaded_says_so(folder: Path) -> None:
    with pytest.raises(AdapterError, match="could not unload adapter 'huanhuan': it is not loaded"):
        service_on(folder, Recorder()).unload("huanhuan")


@pytest.mark.parametrize(("folder_name", "served_base"), [("base", None), ("Base", None), ("tiny", "tiny")])
def test_an_adapter_named_like_the_base_is_listed_with_the_reason_and_never_loaded(
    folder: Path, folder_name: str, served_base: str | None
) -> None:
    write_adapter(folder / folder_name)
    backend = Recorder()
    service = AdapterService(AdapterRegistry(folder, max_rank=8, served_base=served_base), backend)
    statuses = {status.name: status for status in service.statuses()}
    assert f"'{folder_name}' is the base model's name" in statuses[folder_name].problems[0]
    for action in (service.load, service.reload):
        with pytest.raises(AdapterError, match=f"'{folder_name}' is the base model's name.*another name"):
            action(folder_name)
    assert backend.calls == [] and service.load("huanhuan") == "huanhuan"
