"""The real `python -m app` process, as launch.sh runs it (cwd = a project folder holding Models/ and runs/),
with auth: it serves no file it must not, repeated wrong passwords are slowed down and locked out, and it
refuses to listen beyond loopback without auth. Needs no model server (the engine URL points nowhere).

Already covered in tests/app/test_app_api.py and not repeated here: `/gradio_api/file=/etc/passwd`, `..`
traversal on an auth-less page, and `--share` without auth.

    .venv/bin/python -m pytest tests/reliability/test_reliability_app_security.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.reliability_helpers import REPO_ROOT, AppProcess, start_app

pytestmark = pytest.mark.slow
SECRET_KEY = "vllm-key-that-must-never-leak-0123456789"
USERS = {"alice": "alice-password", "mallory": "mallory-password"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder like the repo after launch.sh: an adapter, a training checkpoint, the key file."""
    home = tmp_path_factory.mktemp("project")
    files = {
        "Models/adapters/huanhuan/adapter_config.json": '{"r": 8}',
        "Models/adapters/huanhuan/adapter_model.safetensors": "ADAPTER-WEIGHTS",
        "runs/lora-tiny/checkpoint-50/adapter_model.safetensors": "CHECKPOINT-WEIGHTS",
        "runs/lora-tiny/checkpoint-50/optimizer.pt": "OPTIMIZER-STATE",
        ".cache/vllm-api-key": SECRET_KEY,
        "auth.txt": "\n".join(f"{user}:{password}" for user, password in USERS.items()),
    }
    for relative, text in files.items():
        (home / relative).parent.mkdir(parents=True, exist_ok=True)
        (home / relative).write_text(text, encoding="utf-8")
    return home


@pytest.fixture(scope="module")
def app(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    args = ["--engine", "openai", "--base-url", "http://127.0.0.1:9/v1", "--api-key-env", "HH_TEST_VLLM_KEY",
            "--adapters-dir", "Models/adapters", "--auth-file", "auth.txt"]  # fmt: skip
    log = tmp_path_factory.mktemp("app-log") / "app.log"
    process = start_app(args, log, env={"HH_TEST_VLLM_KEY": SECRET_KEY}, cwd=project)
    yield process
    process.stop()


def logged_in(app: AppProcess, user: str):
    import httpx

    client = httpx.Client(base_url=app.url, timeout=30)
    answer = client.post("login", data={"username": user, "password": USERS[user]})
    assert answer.status_code == 200, answer.text
    return client


def file_urls(project: Path) -> list[str]:
    targets = [
        project / "Models/adapters/huanhuan/adapter_model.safetensors",
        project / "runs/lora-tiny/checkpoint-50/optimizer.pt",
        project / ".cache/vllm-api-key",
        Path("/proc/self/environ"),
    ]
    relative = ["Models/adapters/huanhuan/adapter_model.safetensors", "runs/lora-tiny/checkpoint-50/optimizer.pt",
                ".cache/vllm-api-key", "auth.txt"]  # fmt: skip
    paths = [str(target) for target in targets] + relative
    paths += ["/tmp/gradio/../../proc/self/environ", "%2e%2e/%2e%2e/%2e%2e/proc/self/environ"]
    urls = []
    for path in paths:
        urls += [f"gradio_api/file={path}", f"file={path}", f"gradio_api/file/{path}"]
    urls += ["static/../../../../proc/self/environ", "assets/..%2f..%2f..%2fproc/self/environ",
             "svelte/..%2f..%2f..%2fproc/self/environ", "gradio_api/proxy=http://127.0.0.1:9/v1/models"]  # fmt: skip
    return urls


SECRETS = [b"ADAPTER-WEIGHTS", b"CHECKPOINT-WEIGHTS", b"OPTIMIZER-STATE", SECRET_KEY.encode(), b"alice-password"]


def test_no_project_file_nor_the_key_is_served_to_a_logged_in_user(app: AppProcess, project: Path) -> None:
    client = logged_in(app, "alice")
    assert client.get("config").status_code == 200, "the session is logged in"
    leaked = []
    for url in file_urls(project):
        answer = client.get(url)
        if answer.status_code == 200 and any(secret in answer.content for secret in SECRETS):
            leaked.append(url)
    assert not leaked, f"served: {leaked}"


def test_nothing_is_served_before_login(app: AppProcess, project: Path) -> None:
    import httpx

    with httpx.Client(base_url=app.url, timeout=30) as client:
        assert client.get("config").status_code == 401
        served = [url for url in file_urls(project) if client.get(url).status_code == 200]
    assert not [url for url in served if "file" in url or "proxy" in url], served


def login_status(app: AppProcess, user: str, password: str) -> int:
    import httpx

    return httpx.post(app.url + "login", data={"username": user, "password": password}, timeout=60).status_code


def test_repeated_wrong_passwords_are_slowed_down_and_locked_out(app: AppProcess) -> None:
    started = time.monotonic()
    statuses = [login_status(app, "mallory", f"guess-{attempt}") for attempt in range(5)]
    spent = time.monotonic() - started
    assert statuses == [400] * 5
    assert login_status(app, "mallory", USERS["mallory"]) == 400, "locked out: even the right password is refused"
    assert login_status(app, "alice", USERS["alice"]) == 200, "another user can still log in"
    print(f"\n5 wrong passwords took {spent:.1f} s")
    assert spent >= 4.0, "each wrong password waits about a second"


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_listening_beyond_loopback_without_auth_refuses_to_start(host: str) -> None:
    command = [sys.executable, "-m", "app", "--engine", "openai", "--base-url", "http://127.0.0.1:9/v1"]
    command += ["--host", host]
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=REPO_ROOT)
    assert result.returncode != 0 and "needs auth" in result.stderr


def upload(client, size: int):
    return client.post("gradio_api/upload", files={"files": ("note.txt", b"x" * size, "text/plain")})


def test_uploads_above_the_limit_are_refused_and_none_before_login(app: AppProcess) -> None:
    import httpx

    client = logged_in(app, "alice")
    small = upload(client, 10_000)
    assert small.status_code == 200, small.text
    big = upload(client, 2_000_000)  # the app's default --max-upload-size is 1mb
    assert big.status_code == 413, (big.status_code, big.text[:300])
    with httpx.Client(base_url=app.url, timeout=30) as anonymous:
        assert upload(anonymous, 10_000).status_code in (401, 403)
