"""Shared helpers for the benchmark scripts: the environment header, data, timing.

Every script prints where and how it ran (date, device, versions, the exact command)
before its figures, so a pasted result always carries its provenance.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from typing import Callable

import torch

from vaelib.settings import cpu_name


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()} ({os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()})"


def print_header(title: str, devices: list[torch.device]) -> None:
    """Title, date, command, versions and devices, as the first lines of every benchmark's output."""
    import vaelib

    print(f"# {title}")
    print(f"date:    {datetime.now(timezone.utc).isoformat(timespec='seconds')}")
    print(f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}")
    print(f"python {platform.python_version()}, torch {torch.__version__}, vaelib {vaelib.__version__}, {platform.platform()}")
    for device in devices:
        print(f"device:  {device} = {device_name(device)}")
    if not torch.cuda.is_available():
        print("cuda:    not measured (PyTorch sees no CUDA GPU on this machine)")
    print()


def benchmark_devices(requested: str | None) -> list[torch.device]:
    """The devices to measure: the one asked for, else the CPU and, when present, the GPU."""
    if requested:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise SystemExit("--device cuda was asked for but PyTorch sees no CUDA GPU here")
        return [device]
    return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


def mnist_train_images(n: int | None = None) -> torch.Tensor:
    """The classic 50,000 MNIST training images (uint8, (N, 28, 28)), or the first n of them."""
    from vaelib.data import load_dataset

    return load_dataset("mnist", split="classic").train.images[:n]


def mnist_test_images(n: int | None = None) -> torch.Tensor:
    from vaelib.data import load_dataset

    return load_dataset("mnist", split="classic").test.images[:n]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Wall-clock seconds of fn(), waiting for queued GPU work before and after."""
    synchronize(device)
    began = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - began


def median(values: list[float]) -> float:
    return statistics.median(values)


def fmt_seconds(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)
