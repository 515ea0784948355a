"""Flushing subnormal floats to zero on the CPU, inside training and evaluation.

A learned mixture prior computes exp(log-density - logsumexp) over all its components for
every latent sample. For components far from a sample these terms fall below float32's
smallest normal number (about 1e-38): they become subnormal ("denormal"), and x86 CPUs work
on subnormals many times slower than on normal numbers. Once a mixture has trained, enough
of its terms are subnormal that a training step of the 400-epoch `mog-z10-m1000` took about
twice as long with them as without (`benchmarks/bench_denormals.py` measures it; its
results are in `benchmarks/RESULTS.md`). Flushing them to zero changes nothing a float32
sum can see: each is below 1e-38, and the sums they enter hold terms near 1 (the IW
estimates come out bit for bit the same).

`fit` and `iw_log_likelihood` run inside `flushed_denormals()`; CUDA kernels are unaffected.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def flushed_denormals() -> Iterator[bool]:
    """Flush subnormal CPU floats to zero inside the block, then switch flushing off again.

    Yields whether this CPU supports it (x86 with SSE3 does; elsewhere nothing changes).
    PyTorch has no getter for the setting, so the block ends with flushing off, its default.
    """
    supported = torch.set_flush_denormal(True)
    try:
        yield supported
    finally:
        if supported:
            torch.set_flush_denormal(False)
