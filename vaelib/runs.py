"""Run folders on disk: `<root>/<profile>/<name>/seed-<s>/` holds `checkpoint.pt` and `metrics.json`.

A run is one experiment trained under one identity (`Experiment.identity`). A folder that holds
a run of another identity is left as it is, and the new run goes beside it, to `seed-<s>-<key>/`
(`key`: a digest of the identity). A lock file per folder keeps two processes from training the
same run at once.
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
from typing import Any, Iterator

from .checkpoint import CheckpointError, describe_difference, load_checkpoint
from .files import WriteError, describe_os_error, file_in_the_way, remove_stale_temp_files, write_json_atomically

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, runs still write atomically
    fcntl = None

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"


class RunFolderError(WriteError):
    """A run folder that cannot be created, written or used as it is."""


def identity_key(identity: dict) -> str:
    """A short, stable digest of an identity (the suffix of a side-by-side run folder)."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _stored_identity(checkpoint: Path) -> dict | None:
    """The identity a checkpoint was written for, or None if it cannot be read as one."""
    with contextlib.suppress(CheckpointError):
        meta = load_checkpoint(checkpoint).get("meta")
        return meta if isinstance(meta, dict) else None
    return None


def choose_run_dir(base: Path, seed: int, identity: dict) -> Path:
    """The folder for the run of `identity` under `base` (= `<root>/<profile>/<name>`).

    The folder whose checkpoint holds this identity, if any; else `seed-<s>` when it
    holds no checkpoint; else (it holds another run, kept as it is) `seed-<s>-<key>`.
    """
    plain, keyed = base / f"seed-{seed}", base / f"seed-{seed}-{identity_key(identity)}"
    for folder in (plain, keyed):
        if (folder / CHECKPOINT).is_file() and _stored_identity(folder / CHECKPOINT) == identity:
            return folder
    for folder in (plain, keyed):
        if (folder / CHECKPOINT).exists() and not (folder / CHECKPOINT).is_file():
            raise RunFolderError(f"{folder / CHECKPOINT} is a folder, not a checkpoint file; move it away so the run "
                                 "can be written there (or pass --out to use another runs folder)")
    if not (plain / CHECKPOINT).exists():
        return plain
    found = _stored_identity(plain / CHECKPOINT)
    what = ("an unreadable checkpoint" if found is None else
            f"a run of another identity ({describe_difference(found, identity)})")
    warnings.warn(f"{plain} holds {what}; it is kept as it is, and this run uses {keyed}", stacklevel=3)
    return keyed


def ensure_writable_dir(folder: Path) -> Path:
    """Create a run folder (and parents), check it can be written, and clear stale temporary files."""
    hint = "set VAELIB_CACHE or pass --out to use another folder"
    blocker = file_in_the_way(folder)
    if blocker is not None:
        where = "" if blocker == folder else f" (inside {blocker})"
        raise RunFolderError(f"the run folder {folder} cannot be made{where}: {blocker} is a file, not a folder; "
                             f"move it or {hint}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe.", suffix=".tmp").close()
    except OSError as exc:
        raise RunFolderError(f"cannot write to the run folder {folder}: {describe_os_error(exc)}; {hint}") from None
    remove_stale_temp_files(folder)
    return folder


@contextlib.contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on a run folder (waits, saying so, if another process has it)."""
    ensure_writable_dir(folder)
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(folder / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another process that is training {folder} ...", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def read_metrics(path: Path) -> dict:
    """The JSON object in `metrics.json` ({} if absent); a one-line error naming the file if it is unusable."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise RunFolderError(f"{path} cannot be read ({describe_os_error(exc)}); move it away and run again") from None
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
        metrics = json_safe({**metrics, **update, "run": run})
        write_json_atomically(path, metrics)
    return metrics
