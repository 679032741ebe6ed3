"""`python -m app`: build the side-by-side page over an engine and serve it.

    python -m app --engine openai --base-url http://127.0.0.1:8000/v1 --api-key-env VLLM_API_KEY \\
        --adapters-dir Models/adapters --host 127.0.0.1 --port 7860
    python -m app --engine local --model .cache/tiny-qwen3 --adapters-dir Models/adapters
    python -m app --config configs/app.yaml --share --auth user:secret

`--share` (a public link) and any host other than loopback refuse to start without auth.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from app.config import AppArgs, parse_args, resolve_api_key, resolve_auth
from app.settings import AppSettings

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
log = logging.getLogger("app")


def check_exposure(args: AppArgs, auth: list[tuple[str, str]]) -> None:
    """Refuse to publish the page (share link or a non-loopback host) without auth."""
    if args.share and not auth:
        raise SystemExit("--share needs auth: pass --auth user:password, --auth-file FILE, or set $" + args.auth_env)
    if args.host not in LOOPBACK_HOSTS and not auth:
        raise SystemExit(f"--host {args.host} exposes the page to the network: it needs auth (--auth user:password)")


def make_engine(args: AppArgs) -> Any:
    """The engine named by --engine (imported lazily by serving.factory)."""
    from serving.factory import create_engine

    if args.engine == "openai":
        return create_engine("openai", base_url=args.base_url, api_key=resolve_api_key(args),
                             base_model=args.base_model or None, model_ids=args.models,
                             strict_openai=args.strict_openai)  # fmt: skip
    return create_engine("local", model_path=args.model, adapters=_valid_adapters(args))


def _valid_adapters(args: AppArgs) -> dict[str, Path]:
    """Adapters of the folder that pass validation (the local engine loads them at start)."""
    from serving.adapters import AdapterRegistry

    folder = Path(args.adapters_dir)
    if not folder.is_dir():
        return {}
    registry = AdapterRegistry(folder, base_model_path=args.model or None)
    valid = {}
    for info in registry.list():
        if info.problems:
            log.warning("skipping adapter %s: %s", info.name, "; ".join(info.problems))
        else:
            valid[info.name] = info.path
    return valid


def free_port(host: str) -> int:
    """A port nobody listens on now (for --port 0)."""
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def settings_from(args: AppArgs) -> AppSettings:
    return AppSettings(
        adapters_dir=Path(args.adapters_dir),
        default_adapter=args.default_adapter,
        base_model_path=args.model or None,
        max_new_tokens=args.max_new_tokens,
        max_new_tokens_limit=args.max_new_tokens_limit,
        max_message_chars=args.max_message_chars,
        concurrency_limit=args.concurrency_limit,
        max_queue_size=args.max_queue_size,
        votes_dir=Path(args.votes_dir),
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        args = parse_args(argv)
        auth = resolve_auth(args)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    check_exposure(args, auth)
    from app.login_guard import LoginGuard
    from app.ui import CSS, build_demo

    engine = make_engine(args)
    demo = build_demo(engine, settings_from(args))
    port = args.port or free_port(args.host)
    guard = LoginGuard(auth).check if auth else None  # wrong passwords are slowed down, then locked out
    demo.launch(server_name=args.host, server_port=port, share=args.share, auth=guard, css=CSS, show_error=True,
                max_file_size=args.max_upload_size)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
