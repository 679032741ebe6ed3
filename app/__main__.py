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

from app.config import AppArgs, parse_args, resolve_api_key, resolve_auth, training_refusal
from common.net import free_port
from serving.protocol import Engine, EngineError

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
log = logging.getLogger("app")


def check_exposure(args: AppArgs, auth: list[tuple[str, str]]) -> None:
    """Refuse to publish the page (share link or a non-loopback host) without auth."""
    if args.share and not auth:
        raise SystemExit("--share needs auth: pass --auth user:password, --auth-file FILE, or set $" + args.auth_env)
    if args.host not in LOOPBACK_HOSTS and not auth:
        raise SystemExit(f"--host {args.host} exposes the page to the network: it needs auth (--auth user:password)")


def make_engine(args: AppArgs) -> Engine:
    """The engine named by --engine (imported lazily by serving.factory); a local engine serves the adapters
    folder and loads its valid adapters by name at start."""
    from serving.factory import create_engine

    if args.engine == "openai":
        return create_engine("openai", base_url=args.base_url, api_key=resolve_api_key(args),
                             base_model=args.base_model or None, model_ids=args.models,
                             strict_openai=args.strict_openai)  # fmt: skip
    engine = create_engine("local", model_path=args.model, adapters_dir=args.adapters_dir)
    for status in engine.adapters():
        try:
            engine.load_adapter(status.name)
        except EngineError as error:
            log.warning("skipping adapter %s: %s", status.name, error)
    return engine


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
    from app.train_tab import training_settings
    from app.ui import CSS, build_demo

    engine = make_engine(args)
    if refusal := training_refusal(args):
        log.info(refusal)
    demo = build_demo(engine, args, training_settings(args))
    port = args.port or free_port(args.host)
    guard = LoginGuard(auth).check if auth else None  # wrong passwords are slowed down, then locked out
    demo.launch(server_name=args.host, server_port=port, share=args.share, auth=guard, css=CSS, show_error=True,
                max_file_size=args.max_upload_size)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
