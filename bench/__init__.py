"""Benchmarks, run as modules from the repository root: `python -m bench.bench_padding` (see bench/README.md)."""
