"""Helpers shared by the serving tests (`from tests.support.serving_test_helpers import ...`)."""

from __future__ import annotations

import json
import shutil
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# On a GPU each vLLM server the suite starts takes this share of the card, so the session's server and a test's
# own fit side by side (vLLM refuses to start when the share asked for is not free); a CPU ignores it.
TEST_GPU_SHARE = 0.2


def copy_adapter(source: Path, target: Path, **config_changes) -> Path:
    """A copy of an adapter folder with some adapter_config.json fields changed."""
    shutil.copytree(source, target)
    config_path = target / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config.update(config_changes)
    config_path.write_text(json.dumps(config))
    return target


@dataclass(frozen=True)
class ServedEngine:
    """An engine under the contract tests, and what its server does its own way."""

    engine: Any
    tuned: str  # the fine-tuned model: an adapter name, or the id of the merged model
    tuned_is_adapter: bool = True
    checks_context: bool = True  # refuses a prompt or max_tokens beyond the model's context
    refuses_unknown_models: bool = True  # an id it does not serve is a clear "unknown model", not a failed load


def write_adapter(folder: Path, r: int = 8, **config) -> Path:
    """A minimal adapter folder that passes validation: adapter_config.json and a real safetensors header."""
    folder.mkdir(parents=True)
    settings = {"peft_type": "LORA", "r": r, "bias": "none", "target_modules": ["q_proj"], **config}
    (folder / "adapter_config.json").write_text(json.dumps(settings))
    header = {"base_model.model.layers.0.self_attn.q_proj.lora_A.weight":
              {"dtype": "F32", "shape": [r, 16], "data_offsets": [0, r * 16 * 4]}}  # fmt: skip
    raw = json.dumps(header).encode()
    (folder / "adapter_model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(r * 16 * 4))
    return folder


@contextmanager
def removing_additions(folder: Path) -> Iterator[Path]:
    """Yields `folder` (a session's shared adapters folder); afterwards removes every entry added to it."""
    before = {entry.name for entry in folder.iterdir()}
    try:
        yield folder
    finally:  # a failing test must not leave its additions to the tests that share the folder
        for entry in folder.iterdir():
            if entry.name not in before:
                entry.unlink() if entry.is_symlink() or entry.is_file() else shutil.rmtree(entry)


def read_http_request(connection: socket.socket) -> bytes:
    """Read one HTTP request, head and body, from a raw socket (servers that script how they answer); returns its
    head, or b"" when the client closed the connection first."""
    request = b""
    while b"\r\n\r\n" not in request:
        data = connection.recv(65536)
        if not data:
            return b""
        request += data
    head, _, body = request.partition(b"\r\n\r\n")
    lengths = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
    length = int(lengths[0].split(b":")[1]) if lengths else 0
    while len(body) < length:
        data = connection.recv(65536)
        if not data:
            return b""
        body += data
    return head


class ScriptedServer:
    """A raw HTTP server on 127.0.0.1: each accepted connection goes to `serve(connection)` on its own thread;
    `connections` counts them (whether a client reused a kept-alive one)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.connections = 0

    def start(self) -> None:
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            connection, _ = self._listener.accept()
            self.connections += 1
            threading.Thread(target=self.serve, args=(connection,), daemon=True).start()

    def serve(self, connection: socket.socket) -> None:
        raise NotImplementedError
