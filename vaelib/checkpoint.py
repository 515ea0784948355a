"""Checkpoints: plain dicts of tensors, numbers and strings, written atomically and read back with
`weights_only=True` (nothing else is ever unpickled), each fault a one-line `CheckpointError`."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from .files import atomic_write

FORMAT = "vaelib-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file that is missing, unreadable, truncated, or made for something else."""


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write `payload` to `path` atomically (`vaelib.files.atomic_write`), creating its folder.

    A crash mid-write leaves the previous checkpoint intact; a full or read-only disk raises a
    one-line `WriteError`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    hint = ("free some space or choose another place (VAELIB_CACHE or --out); the previous checkpoint, "
            "if there was one, is intact, and a rerun resumes from it")
    with atomic_write(path, "wb", what="the checkpoint", hint=hint) as handle:
        handle.write(serialized({"format": FORMAT, "format_version": FORMAT_VERSION, **payload}))
    return path


def serialized(obj: Any) -> memoryview:
    """`torch.save(obj)` into memory. Written to a file by Python, a full disk is then an OSError
    (torch's own writer reports it as a RuntimeError that names no cause)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getbuffer()


def load_checkpoint(path: str | os.PathLike, expect: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a checkpoint onto the CPU and check its format and, if given, the `expect`ed entries.

    `expect` maps top-level keys to the values they must hold (typically the experiment's
    identity), so a checkpoint of another model is refused by name.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, random bytes, a pickle with foreign objects, ...
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CheckpointError(f"{path} is not a readable vaelib checkpoint (truncated, corrupt, or not written by "
                              f"vaelib): {type(exc).__name__}: {first}") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a PyTorch file but not a vaelib checkpoint")
    if record.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {record.get('format_version')}, "
                              f"this vaelib reads {FORMAT_VERSION}")
    for key, wanted in (expect or {}).items():
        if record.get(key) != wanted:
            raise CheckpointError(f"{path} was made for a different {key}: {describe_difference(record.get(key), wanted)}")
    return record


def describe_difference(found: Any, wanted: Any) -> str:
    """The fields in which two dicts differ (or both values): `key: file has X, expected Y; ...`."""
    if isinstance(found, dict) and isinstance(wanted, dict):
        keys = sorted(set(found) | set(wanted))
        return "; ".join(f"{k}: file has {found.get(k)!r}, expected {wanted.get(k)!r}"
                         for k in keys if found.get(k) != wanted.get(k))
    return f"file has {found!r}, expected {wanted!r}"


def load_model_state(model: torch.nn.Module, state: dict, path: Path) -> None:
    """`model.load_state_dict(state["model"])` with a one-line reason when the weights do not fit."""
    weights = state.get("model")
    if not isinstance(weights, dict):
        raise CheckpointError(f"{path} holds no model weights; move it away or retrain")
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        lines = str(exc).splitlines()
        first = lines[1].strip() if len(lines) > 1 else str(exc)
        raise CheckpointError(f"{path} matches this experiment's identity but its weights do not fit the model "
                              f"({first}); it was written by other code: move it away or retrain") from None
