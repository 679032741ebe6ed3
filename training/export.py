"""Atomic export of the trained adapter (or full model) with its config, metrics and loss curve.

Everything is written into a hidden staging folder next to `export_dir`, checked (finite weights; for
LoRA `serving.adapters.validate_adapter`, i.e. the rules vLLM applies: safetensors, no modules_to_save, no
DoRA, bias "none", servable target modules), and only then renamed into place. An existing export is
renamed away first and removed after the swap, so a folder a server has loaded is never rewritten file by
file, and an interrupted export leaves no half adapter behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from common.process_group import process_alive


class ExportError(RuntimeError):
    """The trained weights or adapter config cannot be exported; nothing was written to export_dir."""


def non_finite_tensors(folder: Path) -> list[str]:
    """Names of saved tensors (every *.safetensors in folder) that hold NaN or Inf."""
    import torch
    from safetensors import safe_open

    bad = []
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open has keys(), not __iter__
                tensor = handle.get_tensor(name)
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    bad.append(f"{file.name}:{name}")
    return bad


def check_staged(staging: Path, finetune_type: str) -> None:
    bad = non_finite_tensors(staging)
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise ExportError(f"refusing to export: {len(bad)} tensor(s) hold NaN/Inf ({shown}); lower the learning rate")
    if finetune_type != "lora":
        return
    from serving.adapters import validate_adapter  # the serving layer's own rules: what passes here gets served

    problems = validate_adapter(staging, base_model_path=None, max_rank=None)
    if problems:
        raise ExportError("adapter would be refused by vLLM: " + "; ".join(problems))


def swap_into_place(staging: Path, export_dir: Path, overwrite: bool) -> None:
    """Rename staging to export_dir; an existing export is renamed away first, then removed."""
    old = None
    if export_dir.exists():
        if not overwrite:
            raise ExportError(f"{export_dir} exists and overwrite_export is false; nothing was exported")
        old = Path(tempfile.mkdtemp(prefix=f".{export_dir.name}.old-", dir=export_dir.parent))
        os.replace(export_dir, old / export_dir.name)
    os.replace(staging, export_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def new_staging(export_dir: Path) -> Path:
    """A fresh hidden folder beside export_dir, named with this process's id: another process's cleanup
    (remove_stale_staging) leaves it alone while this process lives."""
    return Path(tempfile.mkdtemp(prefix=f".{export_dir.name}.staging-{os.getpid()}-", dir=export_dir.parent))


def remove_stale_staging(export_dir: Path) -> None:
    """Remove the staging folders of exports whose process is gone (killed mid-export); live ones are kept."""
    prefix = f".{export_dir.name}.staging-"
    for stale in export_dir.parent.glob(f"{prefix}*"):
        owner = stale.name.removeprefix(prefix).split("-", 1)[0]
        if not (owner.isdigit() and process_alive(int(owner))):
            shutil.rmtree(stale, ignore_errors=True)


def export_atomically(
    export_dir: Path,
    write_contents: Callable[[Path], None],
    finetune_type: str,
    overwrite: bool = True,
) -> Path:
    """Call write_contents(staging), check the result, and rename it to export_dir. All-or-nothing."""
    export_dir = Path(export_dir)
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    if export_dir.exists() and not overwrite:
        raise ExportError(f"{export_dir} exists and overwrite_export is false; nothing was exported")
    remove_stale_staging(export_dir)
    staging = new_staging(export_dir)
    staging.chmod(0o755)
    try:
        write_contents(staging)
        for item in staging.rglob("*"):  # some writers create 0600 files; a server run by another user must read them
            item.chmod(0o755 if item.is_dir() else 0o644)
        check_staged(staging, finetune_type)
        swap_into_place(staging, export_dir, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return export_dir
