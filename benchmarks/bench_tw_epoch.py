"""Seconds per epoch of the Tomczak & Welling models under their recipe (the `tw` profile).

    python benchmarks/bench_tw_epoch.py [--steps N] [--iw-images N] [--device D] NAME ...

For each experiment: N training steps of batch 100 on the 50,000 training images (all 500
of an epoch by default), timed and scaled to one epoch, plus the per-epoch validation ELBO
(10,000 images) and test ELBO (10,000 images) that `fit` computes, and the IW k = 5000
evaluation on `--iw-images` test images scaled to all 10,000. Nothing is cached or written.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from _common import benchmark_devices, print_header, synchronize
from vaelib.data import binarize_dynamic, binarize_static, load_dataset
from vaelib.evaluate import evaluate_elbo, iw_log_likelihood
from vaelib.experiments import PROFILES, get_experiment
from vaelib.train import VALID_BINARIZATION_SEED, batch_loss, normalise_gradients, prepare_images


def measure(name: str, steps: int, iw_images: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    exp = get_experiment(name)
    model = exp.build().to(device)
    config = exp.train_config(PROFILES["tw"])
    data = load_dataset(exp.dataset, split="classic")
    train = prepare_images(data.train.images, device)
    valid = binarize_static(prepare_images(data.valid.images, device), VALID_BINARIZATION_SEED)
    test = binarize_static(prepare_images(data.test.images, device))
    params = list(model.parameters())
    optimizer = torch.optim.Adam(params, lr=config.lr, fused=device.type == "cuda")
    gen = torch.Generator(device=device).manual_seed(0)
    order = torch.randperm(train.shape[0], generator=gen, device=device)
    steps_per_epoch = train.shape[0] // config.batch_size
    began = time.perf_counter()
    for step in range(steps):
        idx = order[step * config.batch_size : (step + 1) * config.batch_size]
        loss = batch_loss(model, binarize_dynamic(train[idx], gen), config, beta=config.beta_at(0))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        normalise_gradients(params)
        optimizer.step()
    synchronize(device)
    train_s = (time.perf_counter() - began) * steps_per_epoch / steps
    began = time.perf_counter()
    evaluate_elbo(model, valid, config.eval_batch_size, config.kl_estimate)
    synchronize(device)
    valid_s = time.perf_counter() - began
    began = time.perf_counter()
    evaluate_elbo(model, test, config.eval_batch_size)
    synchronize(device)
    test_s = time.perf_counter() - began
    began = time.perf_counter()
    iw_log_likelihood(model, data.test.images[:iw_images], 5000)
    synchronize(device)
    iw_s = (time.perf_counter() - began) * data.test.images.shape[0] / iw_images
    return {
        "experiment": name, "device": str(device), "steps_timed": steps, "train_s_per_epoch": round(train_s, 1),
        "valid_elbo_s": round(valid_s, 1), "test_elbo_s": round(test_s, 1),
        "epoch_s": round(train_s + valid_s + test_s, 1), "iw5000_all_test_s": round(iw_s),
        "torch_threads": torch.get_num_threads(), "parameters": sum(p.numel() for p in params),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="+")
    parser.add_argument("--steps", type=int, default=500, help="training steps timed (500 = one epoch)")
    parser.add_argument("--iw-images", type=int, default=100, help="test images for the IW timing")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: every device there is)")
    args = parser.parse_args()
    devices = benchmark_devices(args.device)
    print_header("Tomczak & Welling models: seconds per epoch of the tw recipe, IW k=5000", devices)
    for device in devices:
        for name in args.names:
            print(json.dumps(measure(name, args.steps, args.iw_images, device)), flush=True)


if __name__ == "__main__":
    main()
