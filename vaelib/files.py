"""Writing files so that a failure leaves nothing behind and says why in one line.

Every file vaelib writes (checkpoints, `metrics.json`, the data cache, sample PNGs) goes
through `atomic_write`: a temporary file `.<name>.<pid>.<random>.tmp` in the target's
folder, flushed and synced, then renamed over the target. A reader sees the old file or
the new one, never half of one and never a 0-byte file. If the write fails (disk full,
read-only file system) the temporary file is removed and a `WriteError` names the file,
the reason and a fix. A writer that is killed cannot remove its temporary file; the next
write to the same file does (`remove_stale_temps_of`).
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import IO, Iterator, Sequence

STALE_TEMP_SECONDS = 3600  # a temporary file this old was left by a killed writer, whoever wrote it
DEAD_WRITER_GRACE_SECONDS = 60  # ... and one this old whose writer's process is gone


class WriteError(RuntimeError):
    """A file or folder that cannot be written (missing, read-only, full, in the way), with a fix.

    `reason` is the short cause alone (e.g. "no space left on device"), for callers that
    word the message themselves.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process (or a number no process can have: keep the file)
    return True


def _age(path: Path, now: float) -> float:
    return now - path.stat().st_mtime


def remove_stale_temp_files(folder: Path, patterns: Sequence[str], older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete files matching `patterns` in `folder` older than `older_than` seconds (left by a killed writer).

    Only names matching `patterns` are considered, so a user's own files are safe.
    """
    removed: list[Path] = []
    now = time.time()
    for pattern in patterns:
        for path in folder.glob(pattern):
            try:
                if path.is_file() and _age(path, now) > older_than:
                    path.unlink()
                    removed.append(path)
            except OSError:
                pass
    return removed


def remove_stale_temps_of(path: Path) -> list[Path]:
    """Delete the temporary files earlier writers of `path` left beside it.

    Stale means older than an hour, or older than a minute with its writer's process gone
    (the pid is part of the name: `.<name>.<pid>.<random>.tmp`, or the data cache's older
    `.<name>.<pid>.tmp`). Files being written right now are never touched.
    """
    removed: list[Path] = []
    now = time.time()
    prefix = f".{path.name}."
    for temp in path.parent.glob(temp_pattern(path)):
        try:
            if not temp.is_file() or not temp.name.startswith(prefix):
                continue
            age = _age(temp, now)
            pid = temp.name[len(prefix):].split(".", 1)[0]
            dead = pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid))
            if age > STALE_TEMP_SECONDS or (dead and age > DEAD_WRITER_GRACE_SECONDS):
                temp.unlink()
                removed.append(temp)
        except OSError:
            pass
    return removed


def temp_pattern(path: Path) -> str:
    """The glob of the temporary files `atomic_write` makes for `path`."""
    return f".{glob.escape(path.name)}.*.tmp"


def describe_os_error(exc: BaseException) -> str:
    """A short reason for a failed write: the OS's words, or what torch's writer means by its own."""
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return "no space left on device"
        if exc.errno == errno.EROFS:
            return "read-only file system"
        return exc.strerror.lower() if exc.strerror else str(exc)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"the write failed ({text}; is the disk full?)"


def file_in_the_way(folder: Path) -> Path | None:
    """The file (if any) that stands where `folder` or one of its parents should be a folder."""
    blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
    return blocker if blocker is not None and not blocker.is_dir() else None


def _low_on_space(folder: Path, below: int = 1 << 20) -> bool:
    try:
        return shutil.disk_usage(folder).free < below
    except OSError:
        return False


def _is_write_failure(exc: BaseException) -> bool:
    """OSError, or the RuntimeError torch.save raises when its file cannot be written."""
    if isinstance(exc, OSError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        s in text for s in ("PytorchStreamWriter", "inline_container", "file write failed", "unexpected pos")
    )


def _set_mode(tmp: str, path: Path) -> None:
    """Give the temporary file (mkstemp makes it 0600) the mode the target has, or a new file would get."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(tmp, mode)


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "wb", what: str = "file", hint: str = "") -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; on success it replaces `path` atomically.

    A failure inside the block (or in flushing, syncing, renaming) removes the temporary file
    and, when it is a file-system failure, raises `WriteError("could not write <what> <path>:
    <reason>; <hint>")`; anything else is re-raised as it is. Stale temporary files of earlier
    writers of the same `path` are removed first.
    """
    path = Path(path)
    folder = path.parent
    hint = hint or "free some space or choose another place"
    remove_stale_temps_of(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    except OSError as exc:
        reason = describe_os_error(exc)
        raise WriteError(f"could not write {what} {path}: {reason}; {hint}", reason) from None
    try:
        with os.fdopen(fd, mode) as handle:  # owns fd from here: closed whatever happens next
            _set_mode(tmp, path)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        full = not isinstance(exc, OSError) and _low_on_space(folder)  # before the temporary file's space is freed
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, Exception) and _is_write_failure(exc):
            reason = "no space left on device" if full else describe_os_error(exc)
            raise WriteError(f"could not write {what} {path}: {reason}; {hint}", reason) from None
        raise


def check_output_file(path: Path, what: str) -> Path:
    """Refuse, before any work, an output path that cannot be written as a file.

    A folder, a missing folder, a file where a folder should be, a read-only place: each
    gives a one-line `WriteError` saying what to do instead.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise WriteError(f"{what} {path} is a folder; give a file name inside it, e.g. {path / 'samples.png'}")
    folder = path.parent
    if not folder.exists():
        raise WriteError(f"the folder {folder} of {what} {path} does not exist; create it or choose another path")
    if not folder.is_dir():
        raise WriteError(f"{what} {path}: {folder} is a file, not a folder; choose another path")
    try:
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
        probe.close()
    except OSError as exc:
        raise WriteError(f"cannot write {what} {path}: {describe_os_error(exc)}; choose a writable folder") from None
    return path
