"""Terminal chat through either engine, for quick checks of a model or a freshly trained adapter.

Multi-turn; thinking is printed dimmed apart from the answer; `/reset` clears the history, `/quit` ends.
A message that fails (e.g. the conversation grew too long for the context) is reported and left out of the
history, and the chat goes on; with `--message` (non-interactive) a failed message ends it with exit code 1.
With `--adapter NAME=PATH` the adapter is loaded first (hot-loaded into vLLM, or into the local model)
and `--compare` sends every message to the base and the adapter side by side.

    python -m serving.chat --engine local --model .cache/tiny-qwen3 --adapter huanhuan=Models/adapters/huanhuan
    python -m serving.chat --engine openai --base-url http://127.0.0.1:8000/v1 --api-key-env VLLM_API_KEY \
        --model huanhuan --temperature 0.6 --max-tokens 512
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from serving.protocol import (
    AnswerDelta,
    ChatMessage,
    ChatRequest,
    EngineError,
    FinalDelta,
    ReasoningDelta,
    SamplingParams,
)

DIM, RESET = "\033[2m", "\033[0m"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m serving.chat", description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["openai", "local"], default="local", help="which engine to talk to")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="openai: server URL")
    parser.add_argument("--api-key-env", default="VLLM_API_KEY", help="openai: env var holding the API key")
    parser.add_argument("--model", default=None, help="local: model folder; openai: served model/adapter name")
    parser.add_argument("--adapter", default=None, help="NAME=PATH: load this adapter and chat with it")
    parser.add_argument("--compare", action="store_true", help="send each message to base and adapter side by side")
    parser.add_argument("--system", default="", help="system prompt (persona), e.g. 现在你要扮演皇帝身边的女人--甄嬛")
    parser.add_argument("--temperature", type=float, default=0.6, help="0 = greedy")
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--top-k", type=int, default=20, help="-1 = off")
    parser.add_argument("--max-tokens", type=int, default=512, help="max new tokens per reply")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-thinking", action="store_true", help="hide the thinking, print only the answer")
    parser.add_argument("--message", action="append", help="send these messages and exit (non-interactive)")
    return parser


def make_engine(args: argparse.Namespace):
    from serving.factory import create_engine

    if args.engine == "local":
        if not args.model:
            raise SystemExit("--engine local needs --model MODEL_FOLDER")
        return create_engine("local", model_path=args.model)
    api_key = os.environ.get(args.api_key_env, "")
    return create_engine("openai", base_url=args.base_url, api_key=api_key or "EMPTY")


def print_reply(stream, label: str, show_thinking: bool) -> str:
    """Print one streamed reply (thinking dimmed, then the answer); return the answer for the history."""
    answer, in_thinking = [], False
    print(f"[{label}]", flush=True)
    for delta in stream:
        if isinstance(delta, ReasoningDelta) and show_thinking:
            print((f"{DIM}thinking: " if not in_thinking else "") + delta.text, end="", flush=True)
            in_thinking = True
        elif isinstance(delta, AnswerDelta):
            if in_thinking:
                print(f"{RESET}\nanswer: ", end="", flush=True)
                in_thinking = False
            answer.append(delta.text)
            print(delta.text, end="", flush=True)
        elif isinstance(delta, FinalDelta):
            print(f"{RESET}\n{summary(delta)}", flush=True)
    return "".join(answer)


def summary(final: FinalDelta) -> str:
    note = "" if final.thinking_closed else ", thinking never closed"
    return (
        f"({final.finish_reason}: {final.reasoning_tokens} thinking + {final.answer_tokens} answer tokens, "
        f"first token {final.time_to_first_token_s or 0:.2f} s, {final.tokens_per_s:.1f} tok/s{note})"
    )


def chat_turn(engine, histories: dict[str, list[ChatMessage]], text: str, params: SamplingParams, show: bool) -> bool:
    """One user message to every model in `histories`, opened together; replies printed one after another.

    Returns False when a reply failed: its error is printed and its history is left as it was before the message.
    """
    for history in histories.values():
        history.append({"role": "user", "content": text})
    requests = [ChatRequest(list(history), model, params) for model, history in histories.items()]
    try:
        streams = engine.open_streams(requests)
    except EngineError as error:  # refused before any reply started (e.g. too long): no side got the message
        for history in histories.values():
            history.pop()
        print(f"error: {error}", file=sys.stderr)
        return False
    answered = True
    for (model, history), stream in zip(histories.items(), streams, strict=True):
        try:
            history.append({"role": "assistant", "content": print_reply(stream, model, show)})
        except EngineError as error:
            history.pop()
            print(f"\n[{model}] error: {error}", file=sys.stderr)
            answered = False
    return answered


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    params = SamplingParams(args.temperature, args.top_p, args.top_k, args.max_tokens, args.seed)
    engine = None
    try:
        params.validate()
        engine = make_engine(args)
        target = args.model if args.engine == "openai" and args.model else "base"
        if args.adapter:
            name, _, path = args.adapter.partition("=")
            engine.load_adapter_path(name, Path(path))  # a trusted local path, not a page request
            target = name
        models = ["base", target] if args.compare and target != "base" else [target]
        system = [{"role": "system", "content": args.system}] if args.system else []
        histories: dict[str, list[ChatMessage]] = {model: list(system) for model in models}
        messages = args.message or iter(lambda: input("\nyou> "), None)
        for text in messages:
            if text.strip() in ("/quit", "/exit"):
                break
            if text.strip() == "/reset":
                histories = {model: list(system) for model in models}
                continue
            if not chat_turn(engine, histories, text, params, not args.no_thinking) and args.message:
                return 1  # a script sending --message learns that a reply failed
    except (EOFError, KeyboardInterrupt):
        print()
    except EngineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        if hasattr(engine, "close"):
            engine.close()  # LocalEngine: end its model thread before the interpreter shuts down
    return 0


if __name__ == "__main__":
    sys.exit(main())
