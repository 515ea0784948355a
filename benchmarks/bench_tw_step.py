"""vaelib's `fit` against a plain PyTorch loop of the same model and recipe (Tomczak & Welling).

The plain loop is written here from the paper's description and shares no code with vaelib:
gated 784-300-300 encoder and mirrored decoder, z = 40, He initialisation, log-variance
clipped by Hardtanh(-6, 2), Bernoulli pixels with probabilities kept in [1e-5, 1 - 1e-5], the
single-sample KL log q(z|x) - log p(z) weighted by a warm-up beta, Adam (lr 5e-4) on
gradients divided tensor by tensor by their norm + 1e-7, batches of 100 dynamically
binarised images, and the validation ELBO after every epoch (early stopping reads it).
`fit` runs as the `tw` profile runs it: test images passed, `compile=True`.

    python benchmarks/bench_tw_step.py                      # standard prior, 2 rounds
    python benchmarks/bench_tw_step.py --prior vamp         # VampPrior with 500 pseudo-inputs
    python benchmarks/bench_tw_step.py --quick              # fewer images, 1 round

The two loops alternate within one process. Each trains a fresh model for `--epochs`
epochs; the first epoch of each is a warm-up (it holds `torch.compile`'s compilation) and
is left out. Printed: seconds per training step (epoch time, validation included, over
steps per epoch) and the ratio plain / vaelib (how many times faster `fit` is).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from _common import mnist_train_images, print_header
from vaelib.data import load_dataset
from vaelib.experiments import PROFILES, get_experiment
from vaelib.train import fit

LATENT, HIDDEN, PSEUDO = 40, 300, 500


class Gated(nn.Module):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.h, self.g = nn.Linear(n_in, n_out), nn.Linear(n_in, n_out)
        for lin in (self.h, self.g):
            nn.init.normal_(lin.weight, 0.0, math.sqrt(2.0 / n_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.h(x) * torch.sigmoid(self.g(x))


class PlainVAE(nn.Module):
    """The paper's one-layer VAE with a standard or a VampPrior prior, written from scratch."""

    def __init__(self, prior: str) -> None:
        super().__init__()
        self.enc = nn.Sequential(Gated(784, HIDDEN), Gated(HIDDEN, HIDDEN))
        self.mu, self.logvar = nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)
        self.dec = nn.Sequential(Gated(LATENT, HIDDEN), Gated(HIDDEN, HIDDEN))
        self.out = nn.Linear(HIDDEN, 784)
        for lin in (self.mu, self.logvar, self.out):
            nn.init.normal_(lin.weight, 0.0, math.sqrt(2.0 / lin.in_features))
        self.prior = prior
        if prior == "vamp":
            self.pseudo = nn.Parameter(0.05 + 0.01 * torch.randn(PSEUDO, 784))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.enc(x)
        return self.mu(h), F.hardtanh(self.logvar(h), -6.0, 2.0)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        if self.prior == "standard":
            return (-0.5 * (z**2 + math.log(2 * math.pi))).sum(1)
        mu, logvar = self.encode(F.hardtanh(self.pseudo, 0.0, 1.0))
        zz, m, lv = z[:, None, :], mu[None], logvar[None]
        log_comp = (-0.5 * (math.log(2 * math.pi) + lv + (zz - m) ** 2 / lv.exp())).sum(2)
        return torch.logsumexp(log_comp, 1) - math.log(PSEUDO)

    def loss(self, x: torch.Tensor, beta: float) -> torch.Tensor:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        p = torch.sigmoid(self.out(self.dec(z))).clamp(1e-5, 1 - 1e-5)
        rec = (x * p.log() + (1 - x) * (1 - p).log()).sum(1)
        log_q = (-0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / logvar.exp())).sum(1)
        return (-rec + beta * (log_q - self.log_prior(z))).mean()


def plain_loop(prior: str, train: torch.Tensor, valid: torch.Tensor, epochs: int) -> list[float]:
    """Train with the plain loop; returns each epoch's seconds (validation included)."""
    model = PlainVAE(prior)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
    x_train = train.reshape(train.shape[0], -1).float() / 255
    x_valid = torch.bernoulli(valid.reshape(valid.shape[0], -1).float() / 255)
    seconds = []
    for epoch in range(1, epochs + 1):
        began, beta = time.perf_counter(), min(1.0, epoch / 100)
        for idx in torch.randperm(x_train.shape[0]).split(100):
            loss = model.loss(torch.bernoulli(x_train[idx]), beta)
            optimizer.zero_grad()
            loss.backward()
            for p in model.parameters():
                p.grad /= p.grad.norm() + 1e-7
            optimizer.step()
        with torch.no_grad():
            sum(model.loss(x_valid[i : i + 1000], 1.0).item() for i in range(0, x_valid.shape[0], 1000))
        seconds.append(time.perf_counter() - began)
    return seconds


def vaelib_fit(prior: str, train: torch.Tensor, valid: torch.Tensor, test: torch.Tensor, epochs: int) -> list[float]:
    name = {"standard": "tw-standard-z40", "vamp": "tw-vamp-z40-k500"}[prior]
    experiment = get_experiment(name)
    config = experiment.train_config(PROFILES["tw"])
    config = type(config)(**{**config.__dict__, "epochs": epochs})
    history = fit(experiment.build(), train, config, valid_images=valid, test_images=test, progress=False,
                  compile=PROFILES["tw"].compile)
    return history.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prior", choices=("standard", "vamp"), default="standard")
    parser.add_argument("--quick", action="store_true", help="10,000 training images, 1 round")
    parser.add_argument("--images", type=int, default=None, help="training images (default 50,000; quick 10,000)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per loop per round, the first one a warm-up")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 2; quick 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n_images = args.images or (10_000 if args.quick else 50_000)
    rounds = args.rounds or (1 if args.quick else 2)
    print_header("bench_tw_step: vaelib fit vs a plain PyTorch loop, Tomczak & Welling recipe", [torch.device("cpu")])
    data = load_dataset("mnist", split="classic")
    train, valid, test = mnist_train_images(n_images), data.valid.images, data.test.images
    steps = -(-train.shape[0] // 100)
    print(f"prior {args.prior}; {train.shape[0]} training images ({steps} steps of 100 an epoch); validation "
          f"{valid.shape[0]} images an epoch (vaelib also scores the test curve every 10th epoch); "
          f"{args.epochs} epochs per loop per round, the first left out; {rounds} round(s), alternating\n")
    print(f"{'round':>5}  {'plain ms/step':>13}  {'vaelib ms/step':>14}  {'plain / vaelib':>14}")
    ratios = []
    for r in range(1, rounds + 1):
        torch.manual_seed(r)
        plain = statistics.median(plain_loop(args.prior, train, valid, args.epochs)[1:]) / steps
        torch.manual_seed(r)
        ours = statistics.median(vaelib_fit(args.prior, train, valid, test, args.epochs)[1:]) / steps
        ratios.append(plain / ours)
        print(f"{r:>5}  {plain * 1e3:>13.2f}  {ours * 1e3:>14.2f}  {plain / ours:>13.2f}x", flush=True)
    print(f"\nplain / vaelib seconds per step: {', '.join(f'{x:.2f}x' for x in ratios)} (goal >= 1.5x)")


if __name__ == "__main__":
    main()
