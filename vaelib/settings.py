"""Settings that come from the environment: device, profile name, cache root, data root, retrain flag.

    VAELIB_PROFILE        the budget (`vaelib.experiments.PROFILES`); default full with a GPU, cpu without
    VAELIB_CACHE          where trained runs live; default ~/.cache/vaelib/runs
    VAELIB_DATA           where data sets are cached; default ~/.cache/vaelib/data
    VAELIB_RETRAIN=1      train even where a run exists
    VAELIB_REQUIRE_DATA=1 a missing optional data set is an error (CI sets it)
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

REQUIRE_DATA_ENV = "VAELIB_REQUIRE_DATA"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def _folder(name: str, default: Path) -> Path:
    configured = os.environ.get(name)
    return Path(configured).expanduser() if configured else default


def profile_name() -> str:
    """$VAELIB_PROFILE, else `full` when PyTorch sees a CUDA GPU and `cpu` otherwise."""
    return os.environ.get("VAELIB_PROFILE") or ("full" if torch.cuda.is_available() else "cpu")


def cache_root() -> Path:
    """Where trained runs live: $VAELIB_CACHE (with ~ expanded), else ~/.cache/vaelib/runs."""
    return _folder("VAELIB_CACHE", Path.home() / ".cache" / "vaelib" / "runs")


def data_root() -> Path:
    """Where data sets are cached: $VAELIB_DATA (with ~ expanded), else ~/.cache/vaelib/data."""
    return _folder("VAELIB_DATA", Path.home() / ".cache" / "vaelib" / "data")


def retrain_requested() -> bool:
    """True when $VAELIB_RETRAIN is 1/true/yes: train even where a run exists."""
    return _flag("VAELIB_RETRAIN")


def data_required() -> bool:
    """True when $VAELIB_REQUIRE_DATA is 1/true/yes: a missing optional data set is an error (CI sets it)."""
    return _flag(REQUIRE_DATA_ENV)


def cpu_name() -> str:
    """The CPU model as the kernel reports it (platform.processor() is often empty on Linux)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown model"


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device to train and evaluate on: cpu, cuda[:N] (if present), mps (if present); default cuda else cpu.

    Anything else (meta, xla, a GPU that is not there) is refused here, before any work, with
    the devices that would work.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"invalid device {device!r}; use cpu or cuda (cuda:N for GPU N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} was asked for but PyTorch sees no CUDA GPU here; use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {str(device)!r} does not exist: PyTorch sees {count} CUDA GPU(s), "
                             f"cuda:0 to cuda:{count - 1}")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("device 'mps' (Apple GPU) was asked for but this PyTorch cannot use one here; "
                             "use --device cpu")
    elif device.type != "cpu":
        raise ValueError(f"device {str(device)!r} cannot train or run these models; use cpu or cuda (cuda:N for GPU N)")
    return device
