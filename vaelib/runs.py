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
import math
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from .checkpoint import CheckpointError, load_checkpoint
from .files import WriteError, atomic_write, describe_os_error, file_in_the_way
from .files import remove_stale_temp_files as _remove_stale
from .files import remove_stale_temps_of

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
STALE_TEMP_SECONDS = 3600  # a temporary file this old was left by a killed writer
RUN_TEMP_PATTERNS = (".*.tmp", "tmp*.tmp")  # every temporary file vaelib (or an older vaelib) makes here


class RunFolderError(WriteError):
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
    for folder in (plain, keyed):
        if (folder / CHECKPOINT).exists() and not (folder / CHECKPOINT).is_file():
            raise RunFolderError(
                f"{folder / CHECKPOINT} is a folder, not a checkpoint file; move it away so the run can be "
                "written there (or pass --out to use another runs folder)"
            )
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
    hint = "set VAELIB_CACHE or pass --out to use another folder"
    blocker = file_in_the_way(folder)
    if blocker is not None:
        where = "" if blocker == folder else f" (inside {blocker})"
        raise RunFolderError(f"the {what} {folder} cannot be made{where}: {blocker} is a file, not a folder; "
                             f"move it or {hint}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe.", suffix=".tmp", delete=True)
        probe.close()
    except OSError as exc:
        raise RunFolderError(f"cannot write to the {what} {folder}: {describe_os_error(exc)}; {hint}") from None
    remove_stale_temp_files(folder)
    return folder


def remove_stale_temp_files(folder: Path, older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete the temporary files killed writers left in a run folder.

    Those of the checkpoint and of metrics.json as soon as their writer's process is gone
    (after a minute's grace), any other (`.*.tmp`, `tmp*.tmp`) once it is `older_than` seconds old.
    """
    removed = remove_stale_temps_of(folder / CHECKPOINT) + remove_stale_temps_of(folder / METRICS)
    return removed + _remove_stale(folder, RUN_TEMP_PATTERNS, older_than)


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
    """Write JSON through a temporary file and a rename: readers never see half a file.

    NaN and infinities are refused (they are not JSON); a full or read-only disk raises a
    one-line `WriteError` and leaves the old file as it was.
    """
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    with atomic_write(path, "w", what="the file", hint="free some space or choose another place; the old file is unchanged") as handle:
        handle.write(text)


def read_metrics(path: Path) -> dict:
    """The JSON object in `metrics.json` ({} if absent); a clear error naming the file if corrupt."""
    if not path.exists():
        return {}
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RunFolderError(f"{path} cannot be read ({describe_os_error(exc)}); move it away and run again") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFolderError(f"{path} is not valid JSON ({exc}); move it away and run again") from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{path} holds a JSON {type(data).__name__}, not an object; move it away and run again")
    return data


def json_safe(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None (JSON has no NaN: null is "undefined")."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


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
        metrics = json_safe(metrics)
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


def check_run_state(state: dict, path: Path, build: Callable[[], torch.nn.Module], epochs: int) -> dict:
    """Check, before anything relies on it, that a checkpoint of the right identity is usable.

    Its epoch count, its training history, its weights (loaded into a scratch model from
    `build`, made without touching the global random state) and, while it is unfinished
    (fewer than `epochs` epochs, not stopped early), the optimiser state it resumes from.
    Each fault is a one-line `CheckpointError` naming the file: such a checkpoint was written
    by other code, or edited by hand. Returns `state`.
    """
    from .train import History

    with torch.random.fork_rng(devices=[]):
        model = build()

    epoch = state.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise CheckpointError(f"{path} records no valid epoch count ({epoch!r}); move it away or retrain")
    if not isinstance(state.get("history"), dict):
        raise CheckpointError(f"{path} has no training history; move it away or retrain")
    try:
        History.from_dict(state["history"])
    except (TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{path} holds a training history this vaelib cannot read ({exc}); "
                              "move it away or retrain") from None
    load_model_state(model, state, path)
    if epoch < epochs and state.get("finished") is not True:
        if not isinstance(state.get("optimizer"), dict):
            raise CheckpointError(f"{path} is unfinished ({epoch} of {epochs} epochs) but has no optimiser state "
                                  "to resume from; move it away or retrain")
        try:
            torch.optim.Adam(model.parameters()).load_state_dict(state["optimizer"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{path} is unfinished but its optimiser state does not fit the model ({exc}); "
                                  "move it away or retrain") from None
    return state
