"""Subnormal floats are flushed inside fit and the IW estimator, and nowhere else."""

import pytest
import torch

from vaelib.denormals import flushed_denormals
from vaelib.evaluate import iw_log_likelihood
from vaelib.train import TrainConfig, fit
from test_train import prototype_images, small_model

SUBNORMAL = 1e-40  # below float32's smallest normal number, 1.18e-38


def flushes_now() -> bool:
    """Whether this thread currently flushes: a subnormal times one comes out as zero."""
    x = torch.full((4,), SUBNORMAL)
    return bool((x * 1.0 == 0).all())


@pytest.fixture(autouse=True)
def needs_support():
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush subnormal floats")


def test_flushing_holds_inside_the_block_and_ends_with_it():
    assert not flushes_now()
    with flushed_denormals() as supported:
        assert supported and flushes_now()
    assert not flushes_now()
    with pytest.raises(KeyError), flushed_denormals():
        raise KeyError("an error inside the block still switches flushing off")
    assert not flushes_now()


def test_fit_and_the_iw_estimator_flush_while_they_run_and_leave_it_off(monkeypatch):
    seen = []
    model = small_model()
    original = type(model).loss

    def spy(self, x, *args, **kwargs):
        seen.append(flushes_now())
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(type(model), "loss", spy)
    images = prototype_images(200)
    fit(model, images, TrainConfig(epochs=1, batch_size=100), progress=False)
    assert seen and all(seen)
    assert not flushes_now()

    bounds = []
    original_bound = type(model).iw_bound

    def bound_spy(self, *args, **kwargs):
        bounds.append(flushes_now())
        return original_bound(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "iw_bound", bound_spy)
    iw_log_likelihood(model, images[:10], 20)
    assert bounds and all(bounds)
    assert not flushes_now()


def test_flushing_leaves_the_iw_estimate_of_a_trained_mixture_unchanged(monkeypatch):
    """The flushed terms are below 1e-38 and enter sums of terms near 1: not one bit moves."""
    import vaelib.evaluate
    from vaelib import reference
    from vaelib.data import load_dataset

    model = reference.load_run("mog-z10-m1000").model
    images = load_dataset("mnist", split="classic").test.images[:5]
    flushed = iw_log_likelihood(model, images, 200).per_image
    monkeypatch.setattr(vaelib.evaluate, "flushed_denormals", torch.no_grad)  # a block that does not flush
    plain = iw_log_likelihood(model, images, 200).per_image
    assert torch.equal(flushed, plain)
