"""What the 1000-component mixture prior costs: epoch time against the plain VAE, peak memory,
and the `cpu`-profile wall time of every named experiment.

1. Epoch time of `mog-z10-m1000` / `vae-z10` with vaelib's `fit` (goal <= 1.15), and the same
   ratio for a mixture prior whose KL uses the direct (batch x M x z) broadcast instead of
   vaelib's matrix-product form (`mixture_kl_approx(..., fast=False)`), for comparison.
2. Peak resident memory (ru_maxrss) of a `cpu`-profile training run: all 50,000 training images,
   the profile's batch size, test ELBO after the epoch, in a fresh process per model. Memory
   reaches its steady state within the first epoch, so one epoch is run (goal < 2 GB).
3. `cpu`-profile wall time of each named experiment: the recorded per-epoch `seconds` of a
   cached, finished `cpu` run (~/.cache/vaelib/runs/cpu/NAME/checkpoint.pt) when there is one;
   otherwise one epoch is measured and multiplied by the profile's epoch count (marked "estimate").

    python benchmarks/bench_mog_cost.py            # 50,000 images, 2 epochs per model, 2 rounds
    python benchmarks/bench_mog_cost.py --quick    # 10,000 images, 1 epoch, 1 round, estimates scaled
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import torch

from _common import benchmark_devices, fmt_seconds, median, mnist_test_images, mnist_train_images, print_header
from vaelib.checkpoint import CheckpointError, load_checkpoint
from vaelib.distributions import mixture_kl_approx
from vaelib.experiments import EXPERIMENTS, PROFILES, get_experiment
from vaelib.trained import load_data_for, run_dir
from vaelib.priors import GaussianMixture
from vaelib.train import TrainConfig, fit

BOOK_EXPERIMENTS = [f"{kind}-z{z}{m}" for z in (2, 10) for kind, m in
                    (("vae", ""), ("mog", "-m10"), ("mog", "-m1000"), ("fmog", "-m10"), ("fmog", "-m1000"))]


class BroadcastKLMixture(GaussianMixture):
    """The same mixture prior, with the KL's (B, M) matrix computed by direct (B, M, z) broadcasting."""

    def kl(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        self._check_z(mu)
        return mixture_kl_approx(mu, logvar, self.means, self.logvars, self.log_weights, fast=False)


def build(variant: str):
    """A freshly initialised model (seed 0): a named experiment, or "mog-broadcast" (mog-z10-m1000, broadcast KL)."""
    torch.manual_seed(0)
    if variant != "mog-broadcast":
        return get_experiment(variant).build()
    model = get_experiment("mog-z10-m1000").build()
    prior = BroadcastKLMixture(model.prior.latent_dim, model.prior.n_components)
    prior.load_state_dict(model.prior.state_dict())
    model.prior = prior
    return model


def epoch_seconds(variant: str, images: torch.Tensor, epochs: int, device: torch.device) -> list[float]:
    config = TrainConfig(epochs=epochs, lr_decay=1.0)
    return fit(build(variant), images, config, device=device, progress=False).seconds


def peak_memory_child(name: str, n_images: int | None) -> None:
    """Run in a fresh process: one `cpu`-profile epoch of `name`; print the peak RSS as JSON."""
    profile = PROFILES["cpu"]
    experiment = get_experiment(name)
    train, test = mnist_train_images(n_images), mnist_test_images(profile.test_subset)
    config = replace(experiment.train_config(profile), epochs=1)
    torch.manual_seed(0)
    fit(experiment.build(), train, config, test_images=test, device="cpu", progress=False)
    print(json.dumps({"name": name, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def peak_memory(name: str, n_images: int | None) -> float:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--peak-memory-child", name]
    if n_images:
        cmd += ["--images", str(n_images)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["max_rss_mb"]


def recorded_cpu_seconds(name: str) -> list[float] | None:
    """Per-epoch seconds of a finished cached `cpu`-profile run of `name`, if one exists."""
    path = run_dir(name, PROFILES["cpu"]) / "checkpoint.pt"
    if not path.exists():
        return None
    try:
        state = load_checkpoint(path)
    except CheckpointError:
        return None
    seconds = state["history"]["seconds"]
    return seconds if state["epoch"] >= PROFILES["cpu"].epochs else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 images, 1 epoch, 1 round")
    parser.add_argument("--images", type=int, default=None, help="training images (default 50,000; quick 10,000)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per model per round (default 2; quick 1)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds, the order reversed each round (default 2)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cpu, plus cuda when present)")
    parser.add_argument("--all-experiments", action="store_true",
                        help="wall times for every registered experiment, not only the ten of chapters 1-3")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-wall", action="store_true")
    parser.add_argument("--peak-memory-child", metavar="NAME", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_memory_child:
        return peak_memory_child(args.peak_memory_child, args.images)

    n_images = args.images or (10_000 if args.quick else 50_000)
    epochs = args.epochs or (1 if args.quick else 2)
    rounds = args.rounds or (1 if args.quick else 2)
    devices = benchmark_devices(args.device)
    print_header("bench_mog_cost: the price of a 1000-component mixture prior", devices)
    images = mnist_train_images(n_images)

    # 1. epoch-time ratios -------------------------------------------------------------------
    print(f"## 1. Epoch time with vaelib fit ({images.shape[0]} images, batch 200, {epochs} epoch(s) per model "
          f"per round, {rounds} round(s); the median epoch of each run)\n")
    variants = ["vae-z10", "mog-z10-m1000", "mog-broadcast", "fmog-z10-m1000"]
    print(f"{'device':<6} {'round':>5}  {'vae-z10 s':>9}  {'mog-m1000 s':>11}  {'broadcast s':>11}  {'fmog-m1000 s':>12}  "
          f"{'MoG/VAE':>7}  {'broadcast/VAE':>13}  {'fMoG/VAE':>8}")
    for device in devices:
        for r in range(1, rounds + 1):
            order = variants if r % 2 else variants[::-1]
            times = {v: epoch_seconds(v, images, epochs, device) for v in order}
            t = {v: median(times[v]) for v in variants}
            print(f"{device.type:<6} {r:>5}  {t['vae-z10']:>9.3f}  {t['mog-z10-m1000']:>11.3f}  {t['mog-broadcast']:>11.3f}  "
                  f"{t['fmog-z10-m1000']:>12.3f}  {t['mog-z10-m1000'] / t['vae-z10']:>7.3f}  "
                  f"{t['mog-broadcast'] / t['vae-z10']:>13.3f}  {t['fmog-z10-m1000'] / t['vae-z10']:>8.3f}   "
                  f"(epochs: {' | '.join(fmt_seconds(times[v]) for v in variants)})")
    print("goal: MoG/VAE <= 1.15 (matrix-product KL); broadcast/VAE and the factorised mixture's fMoG/VAE for comparison")
    if not torch.cuda.is_available():
        print("cuda: not measured (no GPU visible to PyTorch here)")

    # 2. peak memory --------------------------------------------------------------------------
    if not args.skip_memory:
        mem_images = args.images or (10_000 if args.quick else None)
        print(f"\n## 2. Peak resident memory of a cpu-profile training run (fresh process per model, one epoch on "
              f"{mem_images or 50_000} images + test ELBO on 10,000; ru_maxrss)\n")
        for name in ("vae-z10", "mog-z10-m1000", "fmog-z10-m1000"):
            mb = peak_memory(name, mem_images)
            print(f"{name:<16} peak RSS {mb:8.0f} MB  ({'under' if mb < 2048 else 'OVER'} the 2 GB goal)")

    # 3. cpu-profile wall time per named experiment ---------------------------------------------
    if not args.skip_wall:
        cpu = PROFILES["cpu"]
        names = sorted(EXPERIMENTS) if args.all_experiments else BOOK_EXPERIMENTS
        scale = 50_000 / images.shape[0]
        print(f"\n## 3. cpu-profile wall time per experiment ({cpu.epochs} epochs on 50,000 images; recorded = sum of "
              f"the per-epoch seconds of a finished cached run; estimate = one measured epoch"
              f"{f' on {images.shape[0]} images x {scale:g}' if scale != 1 else ''} x {cpu.epochs})\n")
        total = 0.0
        for name in names:
            recorded = recorded_cpu_seconds(name)
            if recorded is not None:
                seconds, how = sum(recorded), f"recorded ({len(recorded)} epochs, median epoch {median(recorded):.2f} s)"
            else:
                exp = get_experiment(name)
                train, test = load_data_for(exp, cpu)
                config = replace(exp.train_config(cpu), epochs=1)
                torch.manual_seed(0)
                one = fit(exp.build(), train[: images.shape[0]], config, test_images=test, device="cpu",
                          progress=False).seconds[0]
                seconds, how = one * scale * cpu.epochs, f"estimate (one epoch: {one:.2f} s)"
            total += seconds
            print(f"{name:<24} {seconds / 60:6.1f} min   {how}")
        print(f"{'total':<24} {total / 60:6.1f} min")


if __name__ == "__main__":
    main()
