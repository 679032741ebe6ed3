"""serving.protocol.server_url: the one place that tells an engine over an HTTP server from an in-process one.

.venv/bin/python -m pytest tests/serving/test_server_url.py
"""

from __future__ import annotations

from serving.openai_engine import OpenAIEngine
from serving.protocol import server_url
from tests.app.fake_engine import FakeEngine


def test_server_url_names_the_server_of_an_http_engine_and_none_for_an_in_process_one() -> None:
    assert server_url(OpenAIEngine("http://127.0.0.1:9/v1/", "key", base_model="base")) == "http://127.0.0.1:9/v1"
    assert server_url(FakeEngine()) is None
