"""Writing files so that a failure leaves nothing behind and says why in one line.

Every file vaelib writes goes through `atomic_write`: a temporary file beside the target, synced,
then renamed over it with `os.replace`, so a reader sees the old file or the new one, never half of
one. A killed writer's temporary file is removed by a later write once it is an hour old.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Iterator

STALE_TEMP_SECONDS = 3600  # a temporary file this old was left by a killed writer


class WriteError(RuntimeError):
    """A file or folder that cannot be written (missing, read-only, full, in the way), with a fix;
    `reason` is the cause alone (e.g. "no space left on device"), for callers that word their own."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


def describe_os_error(exc: OSError) -> str:
    """A short reason for a failed file operation, in the OS's words ("no space left on device")."""
    return (exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc))).lower()


def file_in_the_way(folder: Path) -> Path | None:
    """The file (if any) that stands where `folder` or one of its parents should be a folder."""
    blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
    return blocker if blocker is not None and not blocker.is_dir() else None


def remove_stale_temp_files(folder: Path, pattern: str = ".*.tmp") -> list[Path]:
    """Delete the files in `folder` matching `pattern` that are older than `STALE_TEMP_SECONDS`."""
    removed, now = [], time.time()
    for path in folder.glob(pattern):
        with contextlib.suppress(OSError):
            if path.is_file() and now - path.stat().st_mtime > STALE_TEMP_SECONDS:
                path.unlink()
                removed.append(path)
    return removed


def _mode_for(path: Path) -> int:
    """The mode `path` has, or the one a new file gets under the umask (mkstemp makes 0600)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "wb", what: str = "file",
                 hint: str = "free some space or choose another place") -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; when the block ends, it replaces `path`.

    An `OSError` inside the block, or in flushing, syncing or renaming, removes the temporary file
    and raises `WriteError("could not write <what> <path>: <reason>; <hint>")`; anything else is
    re-raised as it is, also without leaving the temporary file.
    """
    path = Path(path)
    remove_stale_temp_files(path.parent, f".{glob.escape(path.name)}.*.tmp")  # its own writers' only
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(lambda: os.path.exists(tmp) and os.unlink(tmp))
            with os.fdopen(fd, mode) as handle:  # owns fd from here: closed whatever happens next
                os.chmod(tmp, _mode_for(path))
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
    except OSError as exc:
        reason = describe_os_error(exc)
        raise WriteError(f"could not write {what} {path}: {reason}; {hint}", reason) from None


def write_json_atomically(path: Path, data: Any) -> None:
    """Write JSON through `atomic_write` (NaN and infinities are refused: they are not JSON)."""
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    with atomic_write(path, "w", what="the file", hint="free some space or choose another place; the old file is unchanged") as handle:
        handle.write(text)


def check_output_file(path: Path, what: str) -> Path:
    """Refuse, before any work, an output path that cannot be written as a file (`WriteError`)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise WriteError(f"{what} {path} is a folder; give a file name inside it, e.g. {path / 'samples.png'}")
    folder = path.parent
    if not folder.exists():
        raise WriteError(f"the folder {folder} of {what} {path} does not exist; create it or choose another path")
    if not folder.is_dir():
        raise WriteError(f"{what} {path}: {folder} is a file, not a folder; choose another path")
    try:
        tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp").close()
    except OSError as exc:
        raise WriteError(f"cannot write {what} {path}: {describe_os_error(exc)}; choose a writable folder") from None
    return path
