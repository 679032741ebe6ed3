"""Put huanhuan.json into Datasets/: copy it from a local file or download it from a URL, then validate it.

    python -m training.fetch_dataset                                  # from the public GitHub source
    python -m training.fetch_dataset --source /path/to/huanhuan.json   # from a local copy
    python -m training.fetch_dataset --source https://mirror.example/huanhuan.json --out Datasets/huanhuan.json

The default source is `dataset/huanhuan.json` of the public GitHub repository datawhalechina/self-llm
(Apache-2.0). The file is written to a `.part` file, checked with training.data (every bad row is named),
and only then renamed to --out, so a failed fetch never leaves a half file behind.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

DEFAULT_SOURCE = "https://raw.githubusercontent.com/datawhalechina/self-llm/master/dataset/huanhuan.json"
DEFAULT_OUT = Path("Datasets/huanhuan.json")


def _download(url: str, target: Path, timeout_s: float = 60.0) -> None:
    import requests
    from tqdm.auto import tqdm

    with requests.get(url, stream=True, timeout=timeout_s) as response:
        response.raise_for_status()
        total = int(response.headers.get("content-length") or 0) or None
        with target.open("wb") as handle, tqdm(total=total, unit="B", unit_scale=True, desc="huanhuan.json") as bar:
            for chunk in response.iter_content(chunk_size=1 << 16):
                handle.write(chunk)
                bar.update(len(chunk))


def fetch_dataset(source: str, out: Path, max_bad_ratio: float = 0.05, log=print) -> Path:
    """Copy or download source to out atomically after validating it; returns out."""
    from training.data import load_dataset_checked

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    try:
        if source.startswith(("http://", "https://")):
            log(f"downloading {source}")
            _download(source, partial)
        else:
            shutil.copyfile(Path(source).expanduser(), partial)
        partial_named = partial.with_name(out.stem + ".part" + out.suffix)  # keep .json/.jsonl for format detection
        os.replace(partial, partial_named)
        partial = partial_named
        load_dataset_checked(partial, max_bad_ratio, log=log)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    log(f"dataset ready at {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    from training.data import DatasetError

    parser = argparse.ArgumentParser(prog="python -m training.fetch_dataset", description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="local file path or http(s) URL of huanhuan.json")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to put the file")
    parser.add_argument("--max-bad-ratio", type=float, default=0.05, help="refuse a file with more bad rows")
    args = parser.parse_args(argv)
    try:
        fetch_dataset(args.source, args.out, args.max_bad_ratio)
    except (DatasetError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
