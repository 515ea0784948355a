"""The mixture prior's log-density during evaluation: the fused no-grad path against the
autograd-friendly one, side by side in one run.

`vaelib.distributions.mixture_log_prob` has two paths that compute the same number. With
gradients it builds the (N, M) table of component log-densities with three matrix products
and several elementwise passes, then `torch.logsumexp`. Without gradients (every
importance-weighted evaluation) it writes the table with one `addmm` into a single buffer and
reduces it in place. For a 1000-component prior this is most of the cost of the IW bound
beyond the decoder, so the ratio is what chapters 3, 5 and 6 and the reference evaluations save.
The factorised mixture (one 1000-component mixture per dimension, `fmog-*`) gets the same
comparison: its no-grad path reduces one dimension's (rows, M) table at a time, in place.

    python benchmarks/bench_mixture_log_prob.py            # M = 1000, D = 10, 4096 rows, 20 rounds
    python benchmarks/bench_mixture_log_prob.py --quick    # 3 rounds
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from _common import print_header
from vaelib.distributions import (component_log_probs, factorized_component_log_probs, factorized_mixture_log_prob,
                                  mixture_log_prob)


def autograd_path(z, means, logvars, log_weights):
    """The grad-enabled formula, called without gradients for a like-for-like timing."""
    return torch.logsumexp(log_weights + component_log_probs(z, means, logvars), dim=-1)


def factorized_autograd_path(z, means, logvars, log_weights):
    """The factorised mixture's grad-enabled formula: the whole (N, D, M) table at once."""
    return torch.logsumexp(log_weights + factorized_component_log_probs(z, means, logvars), dim=-1).sum(-1)


def seconds_per_call(fn, args, rounds: int) -> float:
    fn(*args)  # warm-up
    began = time.perf_counter()
    for _ in range(rounds):
        fn(*args)
    return (time.perf_counter() - began) / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 20")
    parser.add_argument("--components", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=4096)
    args = parser.parse_args()
    print_header("mixture log-density: fused no-grad path vs autograd path", [torch.device("cpu")])
    gen = torch.Generator().manual_seed(0)
    m, d = args.components, 10
    means = 2 * torch.randn(m, d, generator=gen)
    logvars = 0.5 * torch.randn(m, d, generator=gen) - 1.0
    log_weights = torch.full((m,), -math.log(m))
    z = 2 * torch.randn(args.rows, d, generator=gen)
    rounds = 3 if args.quick else 20
    with torch.no_grad():
        fused = seconds_per_call(mixture_log_prob, (z, means, logvars, log_weights), rounds)
        plain = seconds_per_call(autograd_path, (z, means, logvars, log_weights), rounds)
        error = (mixture_log_prob(z, means, logvars, log_weights).double()
                 - autograd_path(z.double(), means.double(), logvars.double(), log_weights.double())).abs().max()
    print(f"rows {args.rows}, components {m}, latent {d}, {torch.get_num_threads()} threads, {rounds} rounds")
    print(f"autograd path: {1e3 * plain:8.2f} ms per call")
    print(f"fused path:    {1e3 * fused:8.2f} ms per call")
    print(f"ratio (autograd / fused): {plain / fused:.2f}x; largest difference from float64: {error:.1e} nats")

    f_means, f_logvars = means.T.contiguous(), logvars.T.contiguous()  # (D, M): one mixture per dimension
    f_log_weights = torch.full_like(f_means, -math.log(m))
    f_args = (z, f_means, f_logvars, f_log_weights)
    with torch.no_grad():
        fused = seconds_per_call(factorized_mixture_log_prob, f_args, rounds)
        plain = seconds_per_call(factorized_autograd_path, f_args, rounds)
        error = (factorized_mixture_log_prob(*f_args).double()
                 - factorized_autograd_path(*(t.double() for t in f_args))).abs().max()
    print("factorised mixture (one mixture per dimension):")
    print(f"autograd path: {1e3 * plain:8.2f} ms per call")
    print(f"per-dimension path: {1e3 * fused:8.2f} ms per call")
    print(f"ratio (autograd / per-dimension): {plain / fused:.2f}x; largest difference from float64: {error:.1e} nats")


if __name__ == "__main__":
    main()
