"""benchmarks/gpu_suite.sh: it parses, it refuses to measure without a GPU, and CI runs its dry run.

The dry run itself (every step at tiny sizes on the CPU, about a minute) is a stage of .ci/run,
not a unit test, so that `pytest` stays quick.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "benchmarks" / "gpu_suite.sh"


def run_suite(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SUITE), *args], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OUT_DIR": str(tmp_path / "out")})


def test_the_suite_parses_and_documents_itself(tmp_path):
    assert subprocess.run(["bash", "-n", str(SUITE)]).returncode == 0
    shown = run_suite("--help", tmp_path=tmp_path)
    assert shown.returncode == 0 and "--dry-run" in shown.stdout and "400-epoch" in shown.stdout
    wrong = run_suite("--fast", tmp_path=tmp_path)
    assert wrong.returncode == 2 and "unknown option --fast" in wrong.stderr


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None or Path("/dev/nvidia0").exists(),
                    reason="this machine has an NVIDIA GPU")
def test_without_a_gpu_the_suite_stops_at_once_with_a_reason(tmp_path):
    result = run_suite(tmp_path=tmp_path)
    assert result.returncode == 3
    assert "no NVIDIA GPU or driver is visible here" in result.stdout + result.stderr
    assert not (tmp_path / "out" / "venv").exists()  # nothing was installed


def test_ci_runs_the_dry_run():
    assert "benchmarks/gpu_suite.sh --dry-run" in (REPO / ".ci" / "run").read_text()
