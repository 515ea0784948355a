"""vaelib's `fit` against the conventional PyTorch training loop, epoch for epoch.

The conventional loop is the one tutorials teach and users copy: a DataLoader over a
TensorDataset of float images held on the host, each batch moved to the device and
binarised there with torch.bernoulli, the running loss read back with .item() every
step (to print the epoch's average), torch.optim.Adam with its defaults. Both sides
train the same freshly initialised model (same seed) with the same optimiser settings,
batch size and number of steps; only the loop differs. `fit` keeps the uint8 training
set on the device, takes batches as index slices, binarises on the device and reads
the loss back once per epoch.

    python benchmarks/bench_fit.py            # 50,000 images, 3 epochs per side, 2 rounds
    python benchmarks/bench_fit.py --quick    # 10,000 images, 2 epochs, 1 round

Prints seconds per epoch (the median of the epochs of a round) for each loop and device,
and the ratio conventional / vaelib (how many times faster `fit` is).
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.data import DataLoader, TensorDataset

from _common import benchmark_devices, fmt_seconds, median, mnist_train_images, print_header, synchronize, timed
from vaelib.experiments import get_experiment
from vaelib.train import TrainConfig, fit


def conventional_loop(model, images: torch.Tensor, epochs: int, batch_size: int, lr: float,
                      device: torch.device) -> list[float]:
    """Train with a DataLoader loop; returns the wall-clock seconds of each epoch."""
    dataset = TensorDataset(images.reshape(images.shape[0], -1).float() / 255.0)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    seconds = []
    for _ in range(epochs):
        def one_epoch() -> float:
            total = 0.0
            for (x,) in loader:
                x = torch.bernoulli(x.to(device))
                loss = model.loss(x)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * x.shape[0]
            return total / len(dataset)

        seconds.append(timed(one_epoch, device))
    return seconds


def vaelib_fit(model, images: torch.Tensor, epochs: int, batch_size: int, lr: float,
               device: torch.device) -> tuple[list[float], float]:
    """Train with vaelib.train.fit; returns its per-epoch seconds and the whole call's wall time."""
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, lr_decay=1.0)
    history = {}

    def run() -> None:
        history["h"] = fit(model, images, config, device=device, progress=False)

    wall = timed(run, device)
    return history["h"].seconds, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 images, 2 epochs, 1 round")
    parser.add_argument("--model", default="vae-z10", help="a vaelib experiment name (default vae-z10)")
    parser.add_argument("--images", type=int, default=None, help="training images (default 50,000; quick 10,000)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per loop per round (default 3; quick 2)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 2; quick 1)")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cpu, plus cuda when present)")
    args = parser.parse_args()
    n_images = args.images or (10_000 if args.quick else 50_000)
    epochs = args.epochs or (2 if args.quick else 3)
    rounds = args.rounds or (1 if args.quick else 2)
    devices = benchmark_devices(args.device)

    print_header("bench_fit: vaelib fit vs a conventional DataLoader loop", devices)
    images = mnist_train_images(n_images)
    steps = epochs * -(-images.shape[0] // args.batch_size)
    print(f"model {args.model}; {images.shape[0]} training images; batch {args.batch_size}; Adam lr 1e-3; "
          f"{epochs} epochs ({steps} steps) per loop per round; {rounds} round(s), the two loops alternating\n")

    print(f"{'device':<6} {'round':>5}  {'conventional s/epoch':>21}  {'vaelib fit s/epoch':>19}  {'speed-up':>8}   per-epoch seconds (conventional | fit)")
    summary = {}
    for device in devices:
        for r in range(1, rounds + 1):
            torch.manual_seed(0)
            conv = conventional_loop(get_experiment(args.model).build(), images, epochs, args.batch_size, 1e-3, device)
            torch.manual_seed(0)
            ours, wall = vaelib_fit(get_experiment(args.model).build(), images, epochs, args.batch_size, 1e-3, device)
            synchronize(device)
            ratio = median(conv) / median(ours)
            summary.setdefault(device.type, []).append(ratio)
            print(f"{device.type:<6} {r:>5}  {median(conv):>21.3f}  {median(ours):>19.3f}  {ratio:>7.2f}x   "
                  f"{fmt_seconds(conv)} | {fmt_seconds(ours)} (fit call incl. data transfer: {wall:.2f} s)")
    print()
    for device, ratios in summary.items():
        goal = "goal on the GPU: >= 30x" if device == "cuda" else "no goal set for the CPU"
        print(f"{device}: conventional / vaelib epoch time = {', '.join(f'{x:.2f}x' for x in ratios)} ({goal})")
    if "cuda" not in summary:
        print("cuda: not measured (no GPU visible to PyTorch here)")


if __name__ == "__main__":
    main()
