"""Run folders on disk: where a trained run lives, and how it is never lost.

A run is one experiment trained under one identity (network, training recipe with
its seed, data, code version: see `Experiment.identity`). Its folder is
`<root>/<profile>/<name>/seed-<s>/`, holding `checkpoint.pt` and `metrics.json`.
If that folder already holds a run of another identity (the code version was
bumped, a profile's epoch count edited, a file copied in by hand), the folder is
left exactly as it is and the new run goes beside it, to `seed-<s>-<key>/`, where
`key` is a short digest of the identity. No run is ever deleted, except by an
explicit `retrain`, and then only the run of that very identity.

A lock file per folder keeps two processes from training the same run at once;
runs of different seeds or experiments never share a folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import torch

from .checkpoint import CheckpointError, load_checkpoint

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
STALE_TEMP_SECONDS = 3600  # a temporary file this old was left by a killed writer


class RunFolderError(RuntimeError):
    """A run folder that cannot be created, written or used as it is."""


def identity_key(identity: dict) -> str:
    """A short, stable digest of an identity (the suffix of a side-by-side run folder)."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def stored_identity(checkpoint: Path) -> dict | None:
    """The identity a checkpoint was written for, or None if it cannot be read as one."""
    try:
        record = load_checkpoint(checkpoint)
    except CheckpointError:
        return None
    meta = record.get("meta")
    return meta if isinstance(meta, dict) else None


def choose_run_dir(base: Path, seed: int, identity: dict) -> Path:
    """The folder for the run of `identity` under `base` (= `<root>/<profile>/<name>`).

    The folder whose checkpoint holds this identity, if any; else `seed-<s>` when it
    holds no checkpoint; else (it holds another run, kept as it is) `seed-<s>-<key>`.
    """
    plain, keyed = base / f"seed-{seed}", base / f"seed-{seed}-{identity_key(identity)}"
    for folder in (plain, keyed):
        if (folder / CHECKPOINT).is_file() and stored_identity(folder / CHECKPOINT) == identity:
            return folder
    if not (plain / CHECKPOINT).exists():
        return plain
    found = stored_identity(plain / CHECKPOINT)
    what = "an unreadable checkpoint" if found is None else f"a run of another identity ({_difference(found, identity)})"
    warnings.warn(f"{plain} holds {what}; it is kept as it is, and this run uses {keyed}", stacklevel=3)
    return keyed


def _difference(found: dict, wanted: dict) -> str:
    keys = sorted(set(found) | set(wanted))
    return "; ".join(f"{k}: {found.get(k)!r} there, {wanted.get(k)!r} here" for k in keys if found.get(k) != wanted.get(k))


def ensure_writable_dir(folder: Path, what: str = "run folder") -> Path:
    """Create `folder` (and parents) and check it can be written, with a one-line reason if not."""
    try:
        if folder.exists() and not folder.is_dir():
            raise RunFolderError(f"the {what} {folder} is a file, not a folder; move it or choose another place")
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe.", delete=True)
        probe.close()
    except RunFolderError:
        raise
    except OSError as exc:
        hint = "set VAELIB_CACHE or pass --out to use another folder"
        raise RunFolderError(f"cannot write to the {what} {folder}: {exc.strerror or exc}; {hint}") from None
    remove_stale_temp_files(folder)
    return folder


def remove_stale_temp_files(folder: Path, older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete temporary files (`.*.tmp`, `tmp*.tmp`) a killed writer left in `folder` long ago."""
    removed = []
    now = time.time()
    for path in list(folder.glob(".*.tmp")) + list(folder.glob("tmp*.tmp")):
        try:
            if path.is_file() and now - path.stat().st_mtime > older_than:
                path.unlink()
                removed.append(path)
        except OSError:
            pass
    return removed


@contextlib.contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on a run folder (waits, saying so, if another process has it)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, runs still write atomically
        yield
        return
    ensure_writable_dir(folder)
    with open(folder / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another process that is training {folder} ...", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_json_atomically(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename: readers never see half a file."""
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_metrics(path: Path) -> dict:
    """The JSON object in `metrics.json` ({} if absent); a clear error naming the file if corrupt."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFolderError(f"{path} is not valid JSON ({exc}); move it away and run again") from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{path} holds a JSON {type(data).__name__}, not an object; move it away and run again")
    return data


def update_metrics(folder: Path, run: dict, update: dict) -> dict:
    """Merge `update` into `folder/metrics.json` under the folder's lock; returns the result.

    `run` names the run (name, profile, seed, identity key). Metrics recorded for another
    run (a retrained one) are dropped, so the file always describes exactly one run.
    """
    with run_lock(folder):
        path = folder / METRICS
        metrics = read_metrics(path)
        if metrics.get("run") != run:
            metrics = {}
        metrics.update(update)
        metrics["run"] = run
        write_json_atomically(path, metrics)
    return metrics


def load_model_state(model: torch.nn.Module, state: dict, path: Path) -> None:
    """`load_state_dict` with a one-line reason when the shapes or keys do not fit."""
    weights = state.get("model")
    if not isinstance(weights, dict):
        raise CheckpointError(f"{path} holds no model weights; move it away or retrain")
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise CheckpointError(
            f"{path} matches this experiment's identity but its weights do not fit the model "
            f"({first}); it was written by other code: move it away or retrain"
        ) from None
