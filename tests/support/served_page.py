"""Serve a Gradio Blocks on a free loopback port for a test, without blocking; shared by the app tests.

A test imports it as `from tests.support.served_page import serve_demo`.
"""

from __future__ import annotations

from collections.abc import Iterator

from common.net import free_port


def serve_demo(demo, **launch) -> Iterator[str]:
    """Launch the Blocks on 127.0.0.1:<free port>; yields its URL; closes it afterwards."""
    from app.ui import CSS

    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True, css=CSS,
                **launch)  # fmt: skip
    try:
        yield demo.local_url
    finally:
        demo.close()
