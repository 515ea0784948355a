"""The digit classifier that counts hybrid digits: it learns, it is cached, it judges, it refuses bad input."""

from __future__ import annotations

import os

import pytest
import torch

from vaelib.checkpoint import load_checkpoint, save_checkpoint
from vaelib.classifier import (
    HYBRID_SAMPLES, ClassifierConfig, DigitClassifier, accuracy, classifier_path, confident_share, get_classifier,
    hybrid_share, hybrid_share_with_error, score_prior_samples, train_classifier,
)
from vaelib.data import load_dataset
from vaelib.experiments import PROFILES
from vaelib.model import VAE
from vaelib.nets import BernoulliDecoder, GaussianEncoder
from vaelib.priors import StandardNormal


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist", split="classic")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private run cache for this module (the classifier is trained into it once)."""
    root = tmp_path_factory.mktemp("runs")
    old = os.environ.get("VAELIB_CACHE")
    os.environ["VAELIB_CACHE"] = str(root)
    yield root
    if old is None:
        os.environ.pop("VAELIB_CACHE", None)
    else:
        os.environ["VAELIB_CACHE"] = old


@pytest.fixture(scope="module")
def smoke_classifier(cache) -> DigitClassifier:
    return get_classifier("smoke", "cpu")


def test_smoke_training_is_well_above_chance(smoke_classifier, mnist):
    # Trained on the smoke profile's 2,000 images for a few epochs; chance is 10%.
    assert smoke_classifier.test_accuracy > 0.7
    assert accuracy(smoke_classifier, mnist.test.images[:2000], mnist.test.labels[:2000]) > 0.7


def test_the_cached_classifier_is_loaded_not_retrained(smoke_classifier, cache):
    path = classifier_path(PROFILES["smoke"])
    assert path == cache / "smoke" / "digit-classifier" / "checkpoint.pt" and path.is_file()
    stamp = path.stat().st_mtime_ns
    again = get_classifier("smoke", "cpu")
    assert path.stat().st_mtime_ns == stamp
    assert again.test_accuracy == smoke_classifier.test_accuracy
    for a, b in zip(smoke_classifier.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_a_stale_cached_classifier_is_refused_and_retrained(smoke_classifier, cache, tmp_path, monkeypatch):
    monkeypatch.setenv("VAELIB_CACHE", str(tmp_path))
    path = classifier_path(PROFILES["smoke"])
    record = load_checkpoint(cache / "smoke" / "digit-classifier" / "checkpoint.pt")
    record["identity"] = {**record["identity"], "version": -1}
    record["model"] = {k: torch.zeros_like(v) for k, v in record["model"].items()}
    save_checkpoint(path, {k: v for k, v in record.items() if k not in ("format", "format_version")})
    with pytest.warns(UserWarning, match="retraining the digit classifier.*different identity"):
        fresh = get_classifier("smoke", "cpu")
    assert fresh.test_accuracy > 0.7  # retrained, not the zeroed weights
    assert load_checkpoint(path)["identity"]["version"] != -1


def test_real_digits_are_fewer_hybrids_than_noise_or_blends(mnist):
    config = ClassifierConfig(epochs=4, train_subset=5000)
    clf = train_classifier(mnist.train.images[:5000], mnist.train.labels[:5000], config)
    real = mnist.test.images[:2000].float() / 255.0
    noise = torch.rand(2000, 784, generator=torch.Generator().manual_seed(0))
    a, b = real[:1000], real[1000:]
    different = mnist.test.labels[:1000] != mnist.test.labels[1000:2000]
    blends = ((a + b) / 2)[different]  # two different digits drawn on top of each other
    real_share = hybrid_share(clf, real)
    assert real_share < hybrid_share(clf, noise)
    assert real_share < hybrid_share(clf, blends)
    assert 0.0 <= real_share < 0.5


def test_predict_proba_accepts_the_usual_layouts(smoke_classifier, mnist):
    uint8 = mnist.test.images[:50]
    grey = uint8.float() / 255.0
    p_square = smoke_classifier.predict_proba(grey)
    assert p_square.shape == (50, 10)
    torch.testing.assert_close(p_square.sum(-1), torch.ones(50))
    torch.testing.assert_close(smoke_classifier.predict_proba(grey.reshape(50, 784)), p_square)
    torch.testing.assert_close(smoke_classifier.predict_proba(grey[:, None]), p_square)
    torch.testing.assert_close(smoke_classifier.predict_proba(uint8), p_square)
    binary = (grey > 0.5).float()
    assert smoke_classifier.predict_proba(binary).shape == (50, 10)
    assert smoke_classifier.predict(grey).dtype == torch.int64


def test_confident_share_counts_rows_at_or_above_the_threshold():
    probs = torch.tensor([[0.95] + [0.05 / 9] * 9, [0.5, 0.5] + [0.0] * 8, [0.9] + [0.1 / 9] * 9, [0.1] * 10])
    assert confident_share(probs, 0.9) == pytest.approx(0.5)
    assert confident_share(probs, 0.5) == pytest.approx(0.75)
    assert confident_share(probs, 0.99) == 0.0


def test_hybrid_share_comes_with_its_binomial_standard_error(smoke_classifier, mnist):
    images = mnist.test.images[:400]
    share, se = hybrid_share_with_error(smoke_classifier, images)
    assert share == hybrid_share(smoke_classifier, images)
    assert se == pytest.approx((share * (1 - share) / 400) ** 0.5)
    blank = torch.full((50, 784), 0.5)  # no digit at all: every image a hybrid, no spread
    assert hybrid_share_with_error(smoke_classifier, blank, threshold=1.0) == (1.0, 0.0)


def test_bad_inputs_give_clear_errors(smoke_classifier):
    with pytest.raises(TypeError, match="torch.Tensor"):
        smoke_classifier.predict_proba([[0.0] * 784])
    with pytest.raises(ValueError, match=r"\(N, 784\) or \(N, 28, 28\).*\(3, 100\)"):
        smoke_classifier.predict_proba(torch.zeros(3, 100))
    with pytest.raises(ValueError, match=r"\[0, 1\].*logits"):
        smoke_classifier.predict_proba(torch.full((2, 784), -3.0))
    with pytest.raises(ValueError, match="NaN"):
        smoke_classifier.predict_proba(torch.full((2, 784), float("nan")))
    with pytest.raises(TypeError, match="dtype torch.int32"):
        smoke_classifier.predict_proba(torch.zeros(2, 784, dtype=torch.int32))
    with pytest.raises(ValueError, match="threshold"):
        hybrid_share(smoke_classifier, torch.zeros(2, 784), threshold=1.5)
    with pytest.raises(ValueError, match="threshold"):
        confident_share(torch.full((2, 10), 0.1), threshold=0)
    with pytest.raises(ValueError, match=r"shape \(N, 10\)"):
        confident_share(torch.full((2, 9), 0.1))
    with pytest.raises(TypeError, match="DigitClassifier"):
        hybrid_share(torch.nn.Linear(784, 10), torch.zeros(2, 784))
    with pytest.raises(ValueError, match="empty"):
        hybrid_share(smoke_classifier, torch.zeros(0, 784))
    with pytest.raises(ValueError, match="unknown profile"):
        get_classifier("fast")
    with pytest.raises(ValueError, match="epochs"):
        ClassifierConfig(epochs=0)


def test_every_page_scores_the_same_prior_samples_of_a_model(smoke_classifier):
    """score_prior_samples draws from a fixed seed: the introduction, chapter 2 and chapter 3 get
    the same images of one model (so one hybrid share), whatever was drawn before."""
    torch.manual_seed(0)
    model = VAE(GaussianEncoder(784, 32, 4), BernoulliDecoder(4, 32, 784), StandardNormal(4)).eval()
    images, probs = score_prior_samples(model, smoke_classifier)
    torch.randn(123)  # whatever a page drew in between
    again, probs_again = score_prior_samples(model, smoke_classifier)
    assert images.shape == (HYBRID_SAMPLES, 784) and probs.shape == (HYBRID_SAMPLES, 10)
    assert torch.equal(images, again) and torch.equal(probs, probs_again)
    other, _ = score_prior_samples(model, smoke_classifier, n=10, seed=3)
    assert not torch.equal(other, images[:10])  # another seed, another draw
