"""Every failure a user can fix ends in one line `error: ...` with a hint, exit status 2, and leaves
nothing behind: bad devices, unusable --png / --out / VAELIB_CACHE paths, full disks, checkpoints
of the right identity that cannot be used, corrupt metrics.json files."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from vaelib import __main__ as cli
from vaelib import files
from vaelib.checkpoint import load_checkpoint, save_checkpoint

REPO = str(Path(__file__).resolve().parents[1])
SMOKE = ["--profile", "smoke", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A runs folder holding vae-z2 trained under smoke (seed 0), made once; tests work on copies."""
    out = tmp_path_factory.mktemp("trained")
    assert cli.main(["train", "vae-z2", *SMOKE, "--out", str(out)]) == 0
    return out


@pytest.fixture()
def out(trained, tmp_path) -> Path:
    """A private copy of the trained runs folder."""
    copy = tmp_path / "runs"
    shutil.copytree(trained, copy)
    return copy


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("VAELIB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *phrases: str) -> None:
    lines = [line.split("\r")[-1] for line in err.split("\n")]  # a progress bar redraws itself with \r
    lines = [line for line in lines if line.strip() and not line.startswith(("epochs:", "IW k=", "warning: "))]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.tmp")]


def read_only(monkeypatch) -> None:
    """Make every new file fail as on a read-only file system (root ignores chmod, so patch instead)."""

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    monkeypatch.setattr(tempfile, "mkstemp", refuse)


def disk_full_on_sync(monkeypatch) -> None:
    """The data are written, then the disk is full when they are synced to it."""

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)


# -- devices ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("device,phrase", [
    ("meta", "device 'meta' cannot train or run these models; use cpu or cuda"),
    ("xla", "device 'xla' cannot train or run these models"),
    ("cuda:7", "cuda:7"),
    ("gpu", "invalid device 'gpu'; use cpu or cuda"),
])
def test_unusable_devices_are_refused_before_any_work(device, phrase, capsys, private_cache):
    code, _, err = run_cli(["sample", "vae-z2", "--profile", "smoke", "--device", device], capsys)
    assert_one_line_error(code, err, phrase)
    assert not private_cache.exists()


def test_mps_without_an_apple_gpu_is_refused(capsys):
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        pytest.skip("this machine has an Apple GPU")
    code, _, err = run_cli(["train", "vae-z2", "--device", "mps"], capsys)
    assert_one_line_error(code, err, "device 'mps' (Apple GPU) was asked for", "use --device cpu")


# -- --png -----------------------------------------------------------------------------------------

def test_png_into_a_missing_folder_is_refused_before_training(tmp_path, capsys, private_cache):
    png = tmp_path / "no-such-folder" / "s.png"
    code, out, err = run_cli(["sample", "vae-z2", *SMOKE, "--png", str(png)], capsys)
    assert_one_line_error(code, err, f"the folder {png.parent} of --png {png} does not exist", "create it")
    assert out == "" and not private_cache.exists()  # nothing was trained


def test_png_that_is_a_folder_is_refused_and_writes_no_dir_png(tmp_path, capsys, out):
    folder = tmp_path / "pictures"
    folder.mkdir()
    code, printed, err = run_cli(["sample", "vae-z2", *SMOKE, "--out", str(out), "--png", str(folder)], capsys)
    assert_one_line_error(code, err, f"--png {folder} is a folder", "give a file name inside it")
    assert printed == "" and not (tmp_path / "pictures.png").exists() and list(folder.iterdir()) == []


def test_png_under_a_file_is_refused(tmp_path, capsys, out):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, _, err = run_cli(["sample", "vae-z2", *SMOKE, "--out", str(out), "--png", str(blocker / "s.png")], capsys)
    assert_one_line_error(code, err, f"{blocker} is a file, not a folder")


def test_png_on_a_read_only_file_system_is_refused(tmp_path, capsys, out, monkeypatch):
    read_only(monkeypatch)
    png = tmp_path / "s.png"
    code, _, err = run_cli(["sample", "vae-z2", *SMOKE, "--out", str(out), "--png", str(png)], capsys)
    assert_one_line_error(code, err, f"cannot write --png {png}: read-only file system")
    assert not png.exists()


def test_png_on_a_full_disk_leaves_neither_a_png_nor_a_temporary_file(tmp_path, capsys, out, monkeypatch):
    disk_full_on_sync(monkeypatch)
    png = tmp_path / "s.png"
    code, printed, err = run_cli(["sample", "vae-z2", *SMOKE, "--out", str(out), "--png", str(png)], capsys)
    assert_one_line_error(code, err, f"could not write the image file {png}: no space left on device")
    assert printed == "" and list(tmp_path.glob("*s.png*")) == []


def test_png_is_written_whole_with_the_usual_permissions(tmp_path, capsys, out):
    png = tmp_path / "samples"  # no suffix: PNG bytes at exactly this path, and this path printed
    code, printed, _ = run_cli(["sample", "vae-z2", *SMOKE, "--out", str(out), "--png", str(png)], capsys)
    assert code == 0 and printed.strip() == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not (tmp_path / "samples.png").exists()
    umask = os.umask(0)
    os.umask(umask)
    assert png.stat().st_mode & 0o777 == 0o666 & ~umask
    assert temp_files(tmp_path) == []


# -- --out and VAELIB_CACHE ------------------------------------------------------------------------

def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    blocker = tmp_path / "runs"
    blocker.write_text("not a folder")
    code, _, err = run_cli(["train", "vae-z2", *SMOKE, "--out", str(blocker)], capsys)
    assert_one_line_error(code, err, f"{blocker} is a file, not a folder", "--out")
    assert blocker.read_text() == "not a folder"


def test_out_whose_experiment_folder_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    blocker = tmp_path / "runs" / "vae-z2"
    blocker.write_text("in the way")
    code, _, err = run_cli(["train", "vae-z2", *SMOKE, "--out", str(tmp_path / "runs")], capsys)
    assert_one_line_error(code, err, f"(inside {blocker}): {blocker} is a file, not a folder")


def test_read_only_out_is_refused(tmp_path, capsys, monkeypatch):
    (tmp_path / "runs").mkdir()
    read_only(monkeypatch)
    code, _, err = run_cli(["train", "vae-z2", *SMOKE, "--out", str(tmp_path / "runs")], capsys)
    assert_one_line_error(code, err, "cannot write to the run folder", "read-only file system", "VAELIB_CACHE or pass --out")


def test_read_only_cache_is_refused(private_cache, capsys, monkeypatch):
    private_cache.mkdir()
    read_only(monkeypatch)
    code, _, err = run_cli(["evaluate", "vae-z2", *SMOKE], capsys)
    assert_one_line_error(code, err, f"cannot write to the run folder {private_cache / 'smoke' / 'vae-z2' / 'seed-0'}",
                          "read-only file system")


def test_cache_that_is_a_file_is_refused(private_cache, capsys):
    private_cache.write_text("x")
    code, _, err = run_cli(["train", "vae-z2", *SMOKE], capsys)
    assert_one_line_error(code, err, f"{private_cache} is a file, not a folder")


# -- full disks ------------------------------------------------------------------------------------

def test_disk_full_while_training_keeps_the_last_checkpoint_and_no_temporary_file(tmp_path, capsys, monkeypatch):
    real_save = torch.save
    calls = []

    def save_then_fill_the_disk(obj, handle, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            return real_save(obj, handle, *args, **kwargs)  # epoch 1 is saved
        handle.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")  # epoch 2 is not

    monkeypatch.setattr(torch, "save", save_then_fill_the_disk)
    runs = tmp_path / "runs"
    code, _, err = run_cli(["train", "vae-z2", *SMOKE, "--out", str(runs)], capsys)
    checkpoint = runs / "vae-z2" / "seed-0" / "checkpoint.pt"
    assert_one_line_error(code, err, f"could not write the checkpoint {checkpoint}: no space left on device",
                          "the previous checkpoint", "intact")
    assert load_checkpoint(checkpoint)["epoch"] == 1 and temp_files(runs) == []
    monkeypatch.setattr(torch, "save", real_save)
    code, _, _ = run_cli(["train", "vae-z2", *SMOKE, "--out", str(runs)], capsys)  # space again: it resumes
    assert code == 0 and load_checkpoint(checkpoint)["epoch"] == 2


def test_disk_full_while_evaluating_leaves_metrics_json_as_it_was(out, capsys, monkeypatch):
    metrics = out / "vae-z2" / "seed-0" / "metrics.json"
    before = metrics.read_bytes()
    disk_full_on_sync(monkeypatch)
    code, _, err = run_cli(["evaluate", "vae-z2", *SMOKE, "--out", str(out), "--iw-samples", "2", "--quiet"], capsys)
    assert_one_line_error(code, err, f"could not write the file {metrics}: no space left on device")
    assert metrics.read_bytes() == before and temp_files(out) == []


# -- checkpoints of this identity that cannot be used -------------------------------------------------

def rewrite_checkpoint(path: Path, change) -> None:
    state = {k: v for k, v in load_checkpoint(path).items() if k not in ("format", "format_version")}
    save_checkpoint(path, change(state))


@pytest.mark.parametrize("change,phrase", [
    (lambda s: {**s, "model": {**s["model"], "encoder.hidden.weight": torch.zeros(3, 3)}},
     "matches this experiment's identity but its weights do not fit the model"),
    (lambda s: {k: v for k, v in s.items() if k != "history"}, "has no training history"),
    (lambda s: {**s, "history": {"loss": [1.0]}}, "holds a training history this vaelib cannot read"),
    (lambda s: {**s, "epoch": "two"}, "records no valid epoch count"),
    (lambda s: {**{k: v for k, v in s.items() if k != "optimizer"}, "epoch": 1}, "has no optimiser state to resume"),
    (lambda s: {**s, "epoch": 1, "optimizer": {"state": {}, "param_groups": []}}, "optimiser state does not fit"),
])
def test_a_checkpoint_of_this_identity_that_cannot_be_used_is_named(out, capsys, change, phrase):
    path = out / "vae-z2" / "seed-0" / "checkpoint.pt"
    rewrite_checkpoint(path, change)
    before = path.read_bytes()
    for argv in (["sample", "vae-z2"], ["evaluate", "vae-z2", "--iw-samples", "2", "--quiet"], ["train", "vae-z2"]):
        code, _, err = run_cli([*argv, *SMOKE, "--out", str(out)], capsys)
        assert_one_line_error(code, err, str(path), phrase, "move it away or retrain")
    assert path.read_bytes() == before  # kept as it is


def test_a_checkpoint_that_is_a_folder_is_named(out, capsys):
    path = out / "vae-z2" / "seed-0" / "checkpoint.pt"
    path.unlink()
    path.mkdir()
    code, _, err = run_cli(["train", "vae-z2", *SMOKE, "--out", str(out)], capsys)
    assert_one_line_error(code, err, f"{path} is a folder, not a checkpoint file", "move it away")
    assert path.is_dir()


# -- metrics.json ----------------------------------------------------------------------------------

@pytest.mark.parametrize("content,phrase", [
    (b'{"test_nll": ', "is not valid JSON"),
    (b"[1, 2]", "holds a JSON list, not an object"),
    (b'"text"', "holds a JSON str, not an object"),
    (b"\xff\xfe", "is not valid JSON"),
])
def test_a_corrupt_metrics_json_is_named_before_the_evaluation_runs(out, capsys, monkeypatch, content, phrase):
    metrics = out / "vae-z2" / "seed-0" / "metrics.json"
    metrics.write_bytes(content)

    def must_not_run(*args, **kwargs):
        raise AssertionError("the evaluation ran before metrics.json was checked")

    monkeypatch.setattr("vaelib.evaluate.iw_log_likelihood", must_not_run)
    code, _, err = run_cli(["evaluate", "vae-z2", *SMOKE, "--out", str(out), "--quiet"], capsys)
    assert_one_line_error(code, err, f"{metrics} {phrase}", "move it away")
    assert metrics.read_bytes() == content


def test_a_metrics_json_that_is_a_folder_is_named(out, capsys):
    metrics = out / "vae-z2" / "seed-0" / "metrics.json"
    metrics.unlink()
    metrics.mkdir()
    code, _, err = run_cli(["train", "vae-z2", *SMOKE, "--out", str(out)], capsys)
    assert_one_line_error(code, err, f"{metrics} cannot be read")


# -- the real exit status --------------------------------------------------------------------------

def test_the_process_exits_with_status_2_and_one_line(tmp_path):
    env = dict(os.environ, VAELIB_CACHE=str(tmp_path / "cache"), PYTHONPATH=REPO)
    folder = tmp_path / "folder"
    folder.mkdir()
    for argv in (["sample", "vae-z2", "--png", str(folder)], ["train", "vae-z2", "--device", "meta"],
                 ["evaluate", "vae-z2", "--images", "0"], ["train", "vae-z2", "--seed", str(2**70)]):
        proc = subprocess.run([sys.executable, "-m", "vaelib", *argv], env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "folder.png").exists() and not (tmp_path / "cache").exists()


def test_a_reader_that_closes_the_pipe_ends_the_cli_quietly():
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen([sys.executable, "-m", "vaelib", "list"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # as `python -m vaelib list | head -0` does, before anything is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141 and err == "", err  # 128 + SIGPIPE, as Unix tools end


def test_temporary_files_of_a_killed_run_are_removed_when_the_run_is_next_used(out, capsys):
    folder = out / "vae-z2" / "seed-0"
    stamp = time.time() - 2 * files.STALE_TEMP_SECONDS  # a writer killed two hours ago
    left = [folder / ".checkpoint.pt.123.k1ll3d.tmp", folder / ".metrics.json.123.k1ll3d.tmp"]
    for path in left:
        path.write_bytes(b"\0" * 1000)
        os.utime(path, (stamp, stamp))
    code, _, _ = run_cli(["sample", "vae-z2", *SMOKE, "--out", str(out), "--png", str(out / "s.png")], capsys)
    assert code == 0 and not any(path.exists() for path in left)
