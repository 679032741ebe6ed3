"""`python -m serving`: run vLLM (LoRA hot-loading on, 127.0.0.1, API key) in the foreground until Ctrl-C.

The API key comes from $VLLM_API_KEY (set it before starting both this and the app), else a random key is
generated and written to --api_key_file (mode 0600; default .cache/vllm-api-key). It is never printed.

    export VLLM_API_KEY=$(python -c "import secrets; print(secrets.token_urlsafe(32))")
    python -m serving --model Models/Qwen3-4B-Thinking-2507 --adapters_dir Models/adapters --port 8000
    python -m app --engine openai --base-url http://127.0.0.1:8000/v1 --api-key-env VLLM_API_KEY
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

DEFAULT_KEY_FILE = ".cache/vllm-api-key"


def write_secret(path: Path, secret: str) -> None:
    """Write a secret readable by the owner only (created 0600, never world-readable even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(secret + "\n")
    os.chmod(path, 0o600)


def describe(server, key_note: str) -> str:
    lines = [
        f"vLLM is serving '{server.served_model_name}' at {server.base_url} (healthy after {server.startup_s:.0f} s)",
        f"API key: {key_note}",
        f"log: {server.log_path}",
        f"adapters loaded: {', '.join(server.loaded_adapters) or 'none'}",
    ]
    lines += [f"adapter '{name}' skipped: {'; '.join(reasons)}" for name, reasons in server.skipped_adapters.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from serving.protocol import EngineError
    from serving.serve_args import parse_serve_args
    from serving.vllm_server import VLLMServer

    args = parse_serve_args(argv)
    key_from_env = bool(os.environ.get(args.api_key_env or ""))
    key_file = args.api_key_file or ("" if key_from_env else DEFAULT_KEY_FILE)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # run the context manager's stop on `kill`
    print(f"starting vLLM for {args.model} (log in logs/, this takes a while) ...", flush=True)
    try:
        server = VLLMServer(args).start()
    except EngineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    with server:
        if key_file:
            write_secret(Path(key_file), server.api_key)
        key_note = f"from ${args.api_key_env}" if key_from_env else f"generated, written to {key_file} (mode 0600)"
        if args.ready_file:
            server.write_ready_file(Path(args.ready_file), key_file)
        print(describe(server, key_note), flush=True)
        print("Ctrl-C stops the server and every process it started.", flush=True)
        try:
            while server.is_running():
                time.sleep(1.0)
        except KeyboardInterrupt:
            print("\nstopping vLLM ...", flush=True)
            return 0
    print(f"vLLM exited on its own; see {server.log_path}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
