"""Download a base model into Models/ with ModelScope (resumable, with progress), or copy it from a local folder.

    python -m training.download --model-id Qwen/Qwen3-4B-Thinking-2507 --out Models/Qwen3-4B-Thinking-2507
    python -m training.download --model-id Qwen/Qwen3-0.6B --out Models/Qwen3-0.6B
    python -m training.download --from-local /mnt/models/Qwen3-4B-Thinking-2507 --out Models/Qwen3-4B-Thinking-2507

ModelScope keeps partial files and resumes them when the command is run again. A folder counts as done
only when config.json, the tokenizer and every weight shard named by the index are there; then a
`.download-complete` marker is written and later runs return at once. `--from-local` copies file by file
into a `.part` file renamed when complete: a rerun skips files already copied with the same size and
continues a `.part` file from where it stopped, so it is resumable too; it is how tests exercise this code
without a model hub.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from common.devices import free_disk_gb

DONE_MARKER = ".download-complete"
HUB_DOWNLOAD_MIN_FREE_GB = 10.0  # Qwen3-4B-Thinking-2507 is 8.1 GB; refuse before starting rather than fail at 90%
SnapshotFn = Callable[[str, Path], None]


class DownloadError(RuntimeError):
    """The model folder is incomplete after the download; the message names what is missing."""


def missing_files(folder: Path) -> list[str]:
    """What a loadable causal-LM folder lacks: config, tokenizer, weights (every shard of an index)."""
    missing = [name for name in ("config.json", "tokenizer_config.json") if not (folder / name).is_file()]
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        missing += [shard for shard in shards if not (folder / shard).is_file()]
    elif not list(folder.glob("*.safetensors")) and not list(folder.glob("*.bin")):
        missing.append("model weights (*.safetensors)")
    if not (folder / "tokenizer.json").is_file() and not (folder / "vocab.json").is_file():
        missing.append("tokenizer.json")
    return missing


def modelscope_snapshot(model_id: str, out: Path) -> None:
    """Download model_id from ModelScope straight into `out` (resumes partial files, shows progress bars)."""
    try:
        from modelscope import snapshot_download
    except ImportError as error:  # pragma: no cover - modelscope is in requirements.txt
        raise DownloadError("modelscope is not installed: pip install modelscope") from error
    snapshot_download(model_id, local_dir=str(out))


def folder_gb(folder: Path) -> float:
    """The size of every file under `folder` (what a download there has written so far), in GB; 0 when absent."""
    if not folder.is_dir():
        return 0.0
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 1e9


def check_free_disk(out: Path, needed_gb: float) -> None:
    """Refuse to start a download that cannot fit (before anything is created)."""
    if needed_gb <= 0:
        return
    free_gb = free_disk_gb(out)
    if free_gb < needed_gb:
        raise DownloadError(
            f"only {free_gb:.1f} GB free at {out}; the download needs about {needed_gb:.0f} GB. Free some space "
            f"or download into another disk with --out"
        )


def local_snapshot(source: Path) -> SnapshotFn:
    """A snapshot function that copies from a local folder instead of a hub (resumable, with progress)."""

    def copy(model_id: str, out: Path) -> None:
        from tqdm.auto import tqdm

        if not source.is_dir():
            raise DownloadError(f"--from-local {source} is not a folder")
        files = [path for path in sorted(source.rglob("*")) if path.is_file()]
        total = sum(path.stat().st_size for path in files)
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"copying {source.name}") as bar:
            for path in files:
                target = out / path.relative_to(source)
                size = path.stat().st_size
                if target.is_file() and target.stat().st_size == size:
                    bar.update(size)
                    continue
                _copy_resuming(path, target)
                bar.update(size)

    return copy


def _copy_resuming(source: Path, target: Path) -> None:
    """Copy source to target through `target.part`, continuing a .part left by an interrupted copy (one
    longer than the source starts over)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    done = partial.stat().st_size if partial.is_file() else 0
    done = done if done <= source.stat().st_size else 0
    with source.open("rb") as reader, partial.open("r+b" if done else "wb") as writer:
        reader.seek(done)
        writer.seek(done)
        writer.truncate()
        shutil.copyfileobj(reader, writer, length=1 << 20)
    os.replace(partial, target)


def download_model(model_id: str, out: str | Path, snapshot: SnapshotFn | None = None, log=print) -> Path:
    """Fetch model_id into out unless a complete copy is there already; raise DownloadError if incomplete."""
    out = Path(out)
    if (out / DONE_MARKER).is_file() and not missing_files(out):
        log(f"{out} is complete already; nothing to download")
        return out
    if snapshot is None:  # what an interrupted download left needs no room again
        check_free_disk(out, HUB_DOWNLOAD_MIN_FREE_GB - folder_gb(out))
    out.mkdir(parents=True, exist_ok=True)
    log(f"downloading {model_id} into {out} (rerun the same command to resume if interrupted)")
    try:
        (snapshot or modelscope_snapshot)(model_id, out)
    except (DownloadError, KeyboardInterrupt):
        raise
    except Exception as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise DownloadError(
            f"could not download {model_id} into {out}: {type(error).__name__}: {first_line}. Rerun the same "
            f"command to resume (partial files are kept), or put the model's files (config.json, tokenizer files, "
            f"*.safetensors) into {out} by hand, or copy them with --from-local FOLDER"
        ) from error
    missing = missing_files(out)
    if missing:
        raise DownloadError(f"{out} is incomplete after the download, missing: {', '.join(missing)}; rerun to resume")
    (out / DONE_MARKER).write_text(json.dumps({"model_id": model_id}), encoding="utf-8")
    log(f"{model_id} ready at {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.download", description=__doc__.splitlines()[0])
    parser.add_argument("--model-id", default="Qwen/Qwen3-4B-Thinking-2507", help="ModelScope model id")
    parser.add_argument("--out", type=Path, default=None, help="target folder (default: Models/<name of the id>)")
    parser.add_argument("--from-local", type=Path, default=None, help="copy from this local folder instead of a hub")
    args = parser.parse_args(argv)
    out = args.out or Path("Models") / args.model_id.split("/")[-1]
    snapshot = local_snapshot(args.from_local) if args.from_local else None
    try:
        download_model(args.model_id, out, snapshot)
    except DownloadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: rerun the same command to resume the download into {out}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
