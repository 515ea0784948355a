"""What flushing subnormal floats saves a trained mixture prior on the CPU (vaelib.denormals).

    python benchmarks/bench_denormals.py [--run PROFILE/NAME] [--steps N] [--rounds R] [--iw-images N]

Loads a committed reference run (default `full/mog-z10-m1000`, a 1000-component mixture
trained for 400 epochs: a fresh model has no far-away components and so no subnormals), then
times, side by side and alternating in each round, with flushing off and on:
  1. training steps (forward + backward of the ELBO at batch 200; the weights are not updated,
     so both settings see the same numbers), and
  2. the importance-weighted log p(x) of `--iw-images` test images with k = 5000,
and prints the per-image estimates' largest difference between the two settings.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from _common import median, mnist_test_images, mnist_train_images, print_header
from vaelib import reference
from vaelib.data import binarize_dynamic
from vaelib.denormals import flushed_denormals
from vaelib.evaluate import iw_log_likelihood


def time_steps(model, images: torch.Tensor, steps: int, batch: int = 200) -> float:
    """Milliseconds per forward + backward of the mean negative ELBO."""
    gen = torch.Generator().manual_seed(0)
    began = time.perf_counter()
    for i in range(steps):
        x = binarize_dynamic(images[(i * batch) % len(images):][:batch], gen)
        model.zero_grad(set_to_none=True)
        model.loss(x).backward()
    return (time.perf_counter() - began) / steps * 1000


def time_iw(model, images: torch.Tensor) -> tuple[float, torch.Tensor]:
    began = time.perf_counter()
    ll = iw_log_likelihood(model, images, 5000)
    return time.perf_counter() - began, ll.per_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="full/mog-z10-m1000", help="PROFILE/NAME of a committed reference run")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iw-images", type=int, default=20)
    args = parser.parse_args()
    profile, name = args.run.split("/")
    print_header(f"bench_denormals: flushing subnormal floats, {args.run}", [torch.device("cpu")])
    run = reference.load_run(name, profile)
    model = run.model.train()
    train, test = mnist_train_images(10_000), mnist_test_images(args.iw_images)
    steps = {False: [], True: []}
    iw = {False: [], True: []}
    estimates = {}
    for _ in range(args.rounds):
        for flush in (False, True):
            with flushed_denormals() if flush else contextlib.nullcontext():
                steps[flush].append(time_steps(model.train(), train, args.steps))
            seconds, estimates[flush] = time_iw(model, test) if flush else _unflushed_iw(model, test)
            iw[flush].append(seconds)
    print(f"training step (batch 200), median of {args.rounds} rounds of {args.steps} steps:")
    print(f"  off: {median(steps[False]):.1f} ms   on: {median(steps[True]):.1f} ms   "
          f"ratio off/on: {median(steps[False]) / median(steps[True]):.2f}x")
    print(f"IW log p(x), k = 5000, {args.iw_images} test images, median of {args.rounds} rounds:")
    print(f"  off: {median(iw[False]):.2f} s   on: {median(iw[True]):.2f} s   "
          f"ratio off/on: {median(iw[False]) / median(iw[True]):.2f}x")
    diff = (estimates[False] - estimates[True]).abs().max().item()
    print(f"largest per-image difference in log p(x) between the two settings: {diff:.3g} nats")


def _unflushed_iw(model, images: torch.Tensor) -> tuple[float, torch.Tensor]:
    """time_iw with vaelib's own flushing switched off for the call."""
    import vaelib.evaluate as evaluate

    saved = evaluate.flushed_denormals
    evaluate.flushed_denormals = contextlib.nullcontext  # flushing is off outside its blocks
    try:
        return time_iw(model, images)
    finally:
        evaluate.flushed_denormals = saved


if __name__ == "__main__":
    main()
