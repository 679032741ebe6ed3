"""Fixtures of the reliability tests: an engine on the shared vLLM server and an in-process app page on it.

The shared session fixtures (`tiny_model_dir`, `trained_adapter_dir`, `vllm_server`) come from
tests/conftest.py; tests that must kill or restart vLLM start their own server in their module.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def real_engine(vllm_server):
    """An OpenAIEngine on the shared vLLM server, with `huanhuan` loaded."""
    engine = vllm_server.engine()
    if "huanhuan" not in {info.name for info in engine.models()}:
        pytest.fail("the shared vLLM server lost its `huanhuan` adapter")
    return engine


@pytest.fixture(scope="module")
def app_adapters_dir(served_adapters_dir: Path) -> Path:
    """The allow-listed adapters folder of the shared vLLM server (the page sends names, the server resolves
    them here), holding the trained adapter as `huanhuan`."""
    return served_adapters_dir
