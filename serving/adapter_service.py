"""AdapterService: the serving side's adapter list, by name. Resolves a name in ITS adapters folder, validates
it once under one lock per name, and has a backend load or unload it under a served name.

A folder is first served under its own name; every later load or reload of it gets a fresh served name
(`huanhuan@2`, `@3`, ...) and a reload then unloads the old one. A served name is never reused by a reload:
vLLM's same-name reload can reuse prefix-cache blocks computed with the old weights (vLLM issue 42125), and a
pane that shows a name must be the weights on disk. LocalEngine runs this in-process; inside the vLLM process
`serving.adapter_routes` runs it behind `/v1/adapters`.

    service = AdapterService(AdapterRegistry(Path("Models/adapters"), base_model_path=model), backend)
    served = service.reload("huanhuan")  # "huanhuan@2"; "huanhuan" is unloaded once it serves

Each served name's status carries the SHA-256 of the weights file it was loaded from (`weights_sha256`), read
when it was loaded: what the served name answers with, even after the folder on disk was trained again. Blind
votes and evaluation reports key an adapter by it, so a Reload of the same weights keeps their record. When the
weights file changed since (a command-line run exported into the folder), the status says so
(`changed_on_disk`): a Reload serves the new weights.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import defaultdict
from pathlib import Path
from typing import Protocol

from serving.adapters import WEIGHTS_FILE, AdapterInfo, AdapterRegistry, weights_sha256
from serving.protocol import SERVED_NAME_PATTERN, AdapterError, AdapterStatus, check_adapter_name, folder_of


class AdapterBackend(Protocol):
    """What actually holds the adapters: vLLM (through its own routes) or a peft model in-process."""

    def loaded(self) -> list[str]:
        """The served names of every adapter loaded now."""
        ...

    def load(self, served_name: str, path: Path) -> None: ...

    def unload(self, served_name: str) -> None: ...


def generation(served_name: str) -> int:
    """1 for `huanhuan`, N for `huanhuan@N`, 0 for a name that is no served adapter name."""
    match = SERVED_NAME_PATTERN.match(served_name)
    if match is None:
        return 0
    return int(match["generation"] or 1)


def status_of(info: AdapterInfo, served_as: str | None) -> AdapterStatus:
    """The protocol's AdapterStatus for one adapter folder (the evaluation headline read from its eval/)."""
    from evaluation.report import headline

    return AdapterStatus(
        name=info.name,
        served_as=served_as,
        rank=info.rank,
        base_model=info.base_model,
        created=info.created.strftime("%Y-%m-%d %H:%M") if info.created else "",
        eval_loss=info.eval_loss,
        evaluation=headline(info.path),
        thinking=info.thinking or "",
        problems=tuple(info.problems),
    )


class AdapterService:
    """List, load, unload and reload adapters of one adapters folder by name (thread-safe)."""

    def __init__(self, registry: AdapterRegistry, backend: AdapterBackend):
        self.registry = registry
        self.backend = backend
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()
        self._generations: dict[str, int] = {}  # highest generation ever served per folder (never reused)
        self._weights: dict[str, str] = {}  # served name -> SHA-256 of the weights it was loaded from
        self._files: dict[str, tuple[int, int]] = {}  # served name -> (mtime ns, size) of that weights file then

    def statuses(self) -> list[AdapterStatus]:
        """Every folder adapter (with its served name when loaded), then adapters loaded from elsewhere."""
        loaded = self.backend.loaded()
        infos = self.registry.list()
        statuses = [self._with_weights(status_of(info, self._current(info.name, loaded))) for info in infos]
        folders = {info.name for info in infos}
        strays = [name for name in loaded if folder_of(name) not in folders]
        return statuses + [AdapterStatus(name, served_as=name, in_folder=False) for name in strays]

    def load(self, name: str) -> str:
        """Serve folder `name` (a served name `x@N` means folder `x`); an adapter already loaded stays as it is."""
        folder = self._folder(name)
        with self._lock(folder):
            current = self._current(folder, self.backend.loaded())
            if current is not None:
                return current
            return self._serve(folder)

    def reload(self, name: str) -> str:
        """Serve folder `name` again under a fresh served name, then unload the names it had (kept on failure)."""
        folder = self._folder(name)
        with self._lock(folder):
            old = self._served_names(folder, self.backend.loaded())
            served = self._serve(folder)
            for previous in old:
                self.backend.unload(previous)
                self._forget(previous)
            return served

    def unload(self, name: str) -> None:
        """Unload a served name, or every served name of folder `name`."""
        folder = folder_of(name) or name
        with self._lock(folder):
            loaded = self.backend.loaded()
            targets = [name] if name in loaded else self._served_names(name, loaded)
            if not targets:
                raise AdapterError(f"could not unload adapter '{name}': it is not loaded")
            for served in targets:
                self.backend.unload(served)
                self._forget(served)

    def _serve(self, folder: str) -> str:
        """Validate the folder once and load it under its next served name."""
        if not (self.registry.adapters_dir / folder).exists():
            raise AdapterError(f"there is no adapter '{folder}' in the server's adapters folder")
        info = self.registry.info(folder)
        if info.problems:
            raise AdapterError(f"adapter '{folder}' cannot be loaded: " + "; ".join(info.problems))
        served = self._next_name(folder)
        file, digest = _file_stamp(info.path / WEIGHTS_FILE), weights_sha256(info.path)  # before vLLM reads them
        self.backend.load(served, info.path)
        self._weights[served], self._files[served] = digest, file
        return served

    def _with_weights(self, status: AdapterStatus) -> AdapterStatus:
        served = status.served_as
        if served is None:
            return status
        loaded_file = self._files.get(served)
        changed = loaded_file is not None and loaded_file != _file_stamp(self.registry.adapters_dir / status.name /
                                                                          WEIGHTS_FILE)  # fmt: skip
        return dataclasses.replace(status, weights_sha256=self._weights.get(served, ""), changed_on_disk=changed)

    def _forget(self, served: str) -> None:
        self._weights.pop(served, None)
        self._files.pop(served, None)

    def _next_name(self, folder: str) -> str:
        loaded = self._served_names(folder, self.backend.loaded())
        seen = max([self._generations.get(folder, 0), *map(generation, loaded)])
        self._generations[folder] = seen + 1
        return folder if seen == 0 else f"{folder}@{seen + 1}"

    def _folder(self, name: str) -> str:
        folder = folder_of(name)
        if folder is None:
            raise AdapterError("; ".join(check_adapter_name(name)) or f"'{name}' is not a valid adapter name")
        return folder

    def _lock(self, folder: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks[folder]

    @staticmethod
    def _served_names(folder: str, loaded: list[str]) -> list[str]:
        return sorted((name for name in loaded if folder_of(name) == folder), key=generation)

    def _current(self, folder: str, loaded: list[str]) -> str | None:
        names = self._served_names(folder, loaded)
        return names[-1] if names else None


def _file_stamp(path: Path) -> tuple[int, int]:
    """(mtime ns, size) of a file, (0, 0) when it is gone: enough to tell that an export replaced it."""
    try:
        stat = path.stat()
    except OSError:
        return 0, 0
    return stat.st_mtime_ns, stat.st_size
