"""Checkpoints: written atomically, read back with `weights_only=True`, checked before use.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so
PyTorch's restricted unpickler can read it; nothing else is ever unpickled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .files import WriteError, atomic_write, describe_os_error

FORMAT = "vaelib-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file that is missing, unreadable, truncated, or made for something else."""


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write `payload` to `path` atomically: a temporary file in the same folder, then a rename.

    A crash mid-write leaves the previous checkpoint intact, never half a file; a full or
    read-only disk raises `vaelib.files.WriteError` (one line, with a fix) and leaves no
    temporary file behind.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot create the folder {path.parent} for the checkpoint: {describe_os_error(exc)}; "
                         "choose another place (VAELIB_CACHE or --out)") from None
    record = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    hint = ("free some space or choose another place (VAELIB_CACHE or --out); the previous checkpoint, "
            "if there was one, is intact, and a rerun resumes from it")
    with atomic_write(path, "wb", what="the checkpoint", hint=hint) as handle:
        torch.save(record, handle)
    return path


def load_checkpoint(path: str | os.PathLike, expect: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a checkpoint onto the CPU and check its format and, if given, the `expect`ed entries.

    `expect` maps top-level keys to the values they must hold (typically the
    experiment's configuration), so a checkpoint of another model is refused by
    name instead of failing later inside `load_state_dict`.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, random bytes, a pickle with foreign objects, ...
        raise CheckpointError(
            f"{path} is not a readable vaelib checkpoint (truncated, corrupt, or not written by vaelib): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a PyTorch file but not a vaelib checkpoint")
    if record.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {record.get('format_version')}, this vaelib reads {FORMAT_VERSION}"
        )
    for key, wanted in (expect or {}).items():
        found = record.get(key)
        if found != wanted:
            raise CheckpointError(f"{path} was made for a different {key}: {_describe_difference(found, wanted)}")
    return record


def _describe_difference(found: Any, wanted: Any) -> str:
    """Name the differing fields of two config dicts (or show both values)."""
    if isinstance(found, dict) and isinstance(wanted, dict):
        keys = sorted(set(found) | set(wanted))
        diffs = [f"{k}: file has {found.get(k)!r}, expected {wanted.get(k)!r}" for k in keys if found.get(k) != wanted.get(k)]
        return "; ".join(diffs)
    return f"file has {found!r}, expected {wanted!r}"
