"""vaelib.files: a write either replaces the file whole or leaves it as it was, with no leftovers."""

from __future__ import annotations

import errno
import os
import time

import pytest

from vaelib import files
from vaelib.files import WriteError, atomic_write, check_output_file, remove_stale_temp_files


def test_atomic_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "a.txt"
    with atomic_write(path, "w") as handle:
        handle.write("one")
        assert not path.exists()  # nothing visible until the block ends
    assert path.read_text() == "one"
    with atomic_write(path, "w") as handle:
        handle.write("two")
    assert path.read_text() == "two" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


@pytest.mark.parametrize("failure,reason", [
    (OSError(errno.ENOSPC, "No space left on device"), "no space left on device"),
    (OSError(errno.EROFS, "Read-only file system"), "read-only file system"),
])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, failure, reason):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    with pytest.raises(WriteError, match=f"could not write the thing {path}: {reason}.*; try elsewhere") as info:
        with atomic_write(path, what="the thing", hint="try elsewhere") as handle:
            handle.write(b"half")
            raise failure
    assert info.value.reason.startswith(reason)
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


@pytest.mark.parametrize("error", [KeyError("a bug, not a disk problem"), RuntimeError("[enforce fail at x.cc] ...")])
def test_other_errors_pass_through_unchanged_and_leave_nothing(tmp_path, error):
    path = tmp_path / "a.bin"
    with pytest.raises(type(error)):
        with atomic_write(path) as handle:
            handle.write(b"half")
            raise error
    assert list(tmp_path.iterdir()) == []


def test_only_stale_temporary_files_of_the_same_target_are_removed(tmp_path):
    target = tmp_path / "checkpoint.pt"
    old = time.time() - 2 * files.STALE_TEMP_SECONDS
    names = {
        ".checkpoint.pt.abc123.tmp": old,  # an older vaelib's name, an hour old: removed
        ".checkpoint.pt.def456.tmp": time.time(),  # fresh, writer unknown: kept
        ".other.pt.ghi789.tmp": old,  # another file's temporary file: not this write's business
        "notes.tmp": old,
    }
    for name, stamp in names.items():
        (tmp_path / name).write_text("x")
        os.utime(tmp_path / name, (stamp, stamp))
    assert [p.name for p in remove_stale_temp_files(tmp_path, ".checkpoint.pt.*.tmp")] == [".checkpoint.pt.abc123.tmp"]
    assert {p.name for p in tmp_path.iterdir()} == set(names) - {".checkpoint.pt.abc123.tmp"}
    assert [p.name for p in remove_stale_temp_files(tmp_path)] == [".other.pt.ghi789.tmp"]
    assert (tmp_path / "notes.tmp").exists()  # matches no pattern asked for


def test_check_output_file_names_what_is_wrong(tmp_path):
    assert check_output_file(tmp_path / "ok.png", "--png") == tmp_path / "ok.png"
    assert list(tmp_path.iterdir()) == []  # the probe is gone
    with pytest.raises(WriteError, match="is a folder; give a file name inside it"):
        check_output_file(tmp_path, "--png")
    with pytest.raises(WriteError, match="does not exist; create it"):
        check_output_file(tmp_path / "missing" / "x.png", "--png")
    (tmp_path / "f").write_text("")
    with pytest.raises(WriteError, match="is a file, not a folder"):
        check_output_file(tmp_path / "f" / "x.png", "--png")


def test_a_rewritten_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "shared.json"
    path.write_text("{}")
    path.chmod(0o640)
    with atomic_write(path, "w") as handle:
        handle.write("[]")
    assert path.stat().st_mode & 0o777 == 0o640
