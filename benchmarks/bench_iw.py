"""Throughput of the importance-weighted log-likelihood: vaelib's batched estimator against a
per-image loop.

`vaelib.evaluate.iw_log_likelihood` pushes many images and many of their samples through the
networks at once (chunks bounded by `max_rows` decoder rows) and combines the chunks with a
running log-sum-exp in float64. The per-image loop is the usual evaluation code: one image at a
time, its k samples in passes of 100 (the image repeated 100 times), log-sum-exp at the end.
Both compute the same estimator with the same model code (`VAE.log_weights`); only the batching
differs. Throughput is images x samples per second; the two estimates of the NLL on the images
both evaluated are printed as a check that they agree (within Monte-Carlo noise).

    python benchmarks/bench_iw.py            # k = 1000: vaelib on 500 images, the loop on 100, 2 rounds
    python benchmarks/bench_iw.py --quick    # k = 200: vaelib on 100 images, the loop on 25, 1 round

The models are freshly initialised (the cost does not depend on the weights).
"""

from __future__ import annotations

import argparse
import math

import torch

from _common import benchmark_devices, mnist_test_images, print_header, timed
from vaelib.evaluate import CPU_MAX_ROWS, GPU_MAX_ROWS, binary_test_set, iw_log_likelihood
from vaelib.experiments import get_experiment


@torch.no_grad()
def per_image_loop(model, images: torch.Tensor, k: int, samples_per_pass: int = 100) -> torch.Tensor:
    """log p(x) estimates, one image at a time, k samples in passes of `samples_per_pass`."""
    x = binary_test_set(model, images)
    out = []
    for i in range(x.shape[0]):
        log_w = torch.cat([model.log_weights(x[i : i + 1], min(samples_per_pass, k - s))
                           for s in range(0, k, samples_per_pass)])
        out.append(torch.logsumexp(log_w.double(), dim=0) - math.log(k))
    return torch.cat(out).cpu()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="k = 200, 100 / 25 images, 1 round")
    parser.add_argument("--k", type=int, default=None, help="samples per image (default 1000; quick 200)")
    parser.add_argument("--images", type=int, default=None, help="images for vaelib (default 500; quick 100)")
    parser.add_argument("--loop-images", type=int, default=None, help="images for the per-image loop (default 100; quick 25)")
    parser.add_argument("--rounds", type=int, default=None, help="repetitions (default 2; quick 1)")
    parser.add_argument("--models", default="vae-z10,mog-z10-m1000",
                        help="comma-separated experiment names (fmog-z10-m1000 is slow: its log-density is a (N, z, M) tensor)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cpu, plus cuda when present)")
    args = parser.parse_args()
    k = args.k or (200 if args.quick else 1000)
    n_fast = args.images or (100 if args.quick else 500)
    n_loop = args.loop_images or (25 if args.quick else 100)
    rounds = args.rounds or (1 if args.quick else 2)
    devices = benchmark_devices(args.device)

    print_header("bench_iw: importance-weighted log-likelihood throughput", devices)
    images = mnist_test_images(max(n_fast, n_loop))
    print(f"k = {k} samples per image; vaelib iw_log_likelihood on {n_fast} test images (batch_size 100, max_rows "
          f"at the device's default: {CPU_MAX_ROWS} on a CPU, {GPU_MAX_ROWS} on a GPU, and at the other device's); "
          f"the per-image loop on the first {n_loop} (passes of 100 samples)\n")
    print(f"{'device':<6} {'model':<15} {'round':>5}  {'method':<28} {'seconds':>8}  {'images x samples / s':>20}  "
          f"{'NLL on the common images':>24}")
    for device in devices:
        for name in args.models.split(","):
            torch.manual_seed(0)
            model = get_experiment(name).build().to(device).eval()
            # Untimed warm-up of every path (allocator, thread pool, kernels), so round 1 is not a cold start.
            iw_log_likelihood(model, images[:100], min(k, 100))
            per_image_loop(model, images[:2], min(k, 100))
            for r in range(1, rounds + 1):
                rows = []
                other = CPU_MAX_ROWS if device.type == "cuda" else GPU_MAX_ROWS
                for label, n, run in (
                    ("vaelib (default max_rows)", n_fast, lambda: iw_log_likelihood(model, images[:n_fast], k)),
                    (f"vaelib (max_rows {other})", n_fast,
                     lambda: iw_log_likelihood(model, images[:n_fast], k, max_rows=other)),
                    ("per-image loop", n_loop, lambda: per_image_loop(model, images[:n_loop], k)),
                ):
                    result = {}
                    seconds = timed(lambda: result.update(out=run()), device)
                    out = result["out"]
                    per_image = out.per_image if hasattr(out, "per_image") else out
                    nll = -per_image[:n_loop].mean().item()
                    rows.append((label, seconds, n * k / seconds, nll))
                base = rows[-1][2]
                for label, seconds, rate, nll in rows:
                    print(f"{device.type:<6} {name:<15} {r:>5}  {label:<28} {seconds:>8.2f}  {rate:>20,.0f}  {nll:>24.2f}"
                          + (f"   ({rate / base:.1f}x the loop)" if label != "per-image loop" else ""))
    if not torch.cuda.is_available():
        print("\ncuda: not measured (no GPU visible to PyTorch here)")


if __name__ == "__main__":
    main()
