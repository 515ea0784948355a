"""Tomczak & Welling (2018) protocol: gated networks, KL warm-up, early stopping with the best
weights (and exact resumption), their optimiser, the sampled KL, and the three named models.
Existing experiments keep their identities and state-dict keys."""

import dataclasses
import math

import pytest
import torch

import vaelib.train as train_module
from test_train import prototype_images
from vaelib.checkpoint import load_checkpoint
from vaelib.data import binarize_static
from vaelib.evaluate import evaluate_elbo
from vaelib.experiments import EXPERIMENTS, PROFILES, get_experiment, get_or_train, with_epochs, with_train_subset
from vaelib.nets import GatedBernoulliDecoder, GatedDense, GatedEncoder
from vaelib.priors import GaussianMixture, StandardNormal, VampPrior
from vaelib.train import EarlyStopping, TrainConfig, _epoch_seed, fit


# -- networks -----------------------------------------------------------------------------------
def test_gated_dense_is_a_linear_layer_times_a_sigmoid_gate():
    torch.manual_seed(0)
    layer = GatedDense(7, 5)
    x = torch.randn(3, 7)
    expected = (x @ layer.h.weight.T + layer.h.bias) * torch.sigmoid(x @ layer.g.weight.T + layer.g.bias)
    torch.testing.assert_close(layer(x), expected)
    assert layer(x).shape == (3, 5)
    assert sorted(dict(layer.named_parameters())) == ["g.bias", "g.weight", "h.bias", "h.weight"]


def test_gated_weights_use_he_initialisation():
    torch.manual_seed(0)
    layer = GatedDense(784, 300)
    for w in (layer.h.weight, layer.g.weight):
        assert w.mean().abs() < 2e-3
        assert w.std().item() == pytest.approx(math.sqrt(2 / 784), rel=0.02)
    bound = 1 / math.sqrt(784)  # biases keep PyTorch's default, U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert layer.h.bias.abs().max() <= bound


def test_gated_encoder_clips_the_log_variance_to_their_range():
    torch.manual_seed(0)
    enc = GatedEncoder(784, 300, 40, 2)
    mu, logvar = enc(torch.rand(64, 784) * 50)  # large inputs push the log-variance to both ends
    assert mu.shape == logvar.shape == (64, 40)
    assert logvar.min() >= -6 and logvar.max() <= 2
    assert [type(m).__name__ for m in enc.layers] == ["GatedDense", "GatedDense"]
    assert (enc.layers[0].h.in_features, enc.layers[0].h.out_features, enc.layers[1].h.out_features) == (784, 300, 300)


def test_gated_decoder_likelihood_clamps_probabilities_like_theirs():
    dec = GatedBernoulliDecoder(40, 300, 784, 2)
    logits = torch.tensor([[-30.0, -3.0, 0.0, 4.0, 30.0]])
    x = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0]])
    probs = torch.sigmoid(logits.double()).clamp(1e-5, 1 - 1e-5)  # their log_Bernoulli (in float64 here)
    theirs = (x * probs.log() + (1 - x) * (1 - probs).log()).sum(-1)
    torch.testing.assert_close(dec.log_likelihood(logits, x).double(), theirs, rtol=1e-6, atol=1e-5)
    assert dec(torch.randn(2, 40)).shape == (2, 784)


def gated_vae_parameter_count(x=784, h=300, z=40):
    """What their models/VAE.py implies: two GatedDense (two linears each) per side, mean/logvar heads."""
    gated = lambda a, b: 2 * (a * b + b)  # noqa: E731
    encoder = gated(x, h) + gated(h, h) + 2 * (h * z + z)
    decoder = gated(z, h) + gated(h, h) + (h * x + x)
    return encoder + decoder


@pytest.mark.parametrize("name, prior_type, extra", [
    ("tw-standard-z40", StandardNormal, 0),
    ("tw-mog-z40-m500", GaussianMixture, 2 * 500 * 40),  # 500 means and log-variances
    ("tw-vamp-z40-k500", VampPrior, 500 * 784),  # 500 pseudo-inputs (their `means` linear, no bias)
])
def test_the_three_models_build_with_their_parameter_counts(name, prior_type, extra):
    torch.manual_seed(0)
    model = get_experiment(name).build()
    assert isinstance(model.prior, prior_type) and model.latent_dim == 40
    assert isinstance(model.encoder, GatedEncoder) and isinstance(model.decoder, GatedBernoulliDecoder)
    assert sum(p.numel() for p in model.parameters()) == gated_vae_parameter_count() + extra
    assert gated_vae_parameter_count() == 1_116_864


def test_their_pseudo_inputs_are_hardtanh_clipped_and_start_near_005():
    torch.manual_seed(0)
    prior = get_experiment("tw-vamp-z40-k500").build().prior
    assert prior.activation == "hardtanh" and prior.n_components == 500
    u = prior.pseudo_inputs
    assert u.shape == (500, 784) and u.min() >= 0 and u.max() <= 1
    assert u.mean().item() == pytest.approx(0.05, abs=1e-3) and u.std().item() == pytest.approx(0.01, rel=0.05)
    assert u.requires_grad and torch.autograd.grad(u.sum(), prior.pseudo_raw)[0].abs().min() == 1  # inside (0, 1)
    means, logvars = prior.components()
    assert means.shape == logvars.shape == (500, 40)
    with pytest.raises(ValueError, match="unknown pseudo-input activation"):
        VampPrior(GatedEncoder(), 3, activation="relu")


# -- existing experiments are untouched ------------------------------------------------------------
def test_identity_of_the_original_models_is_unchanged():
    assert get_experiment("vae-z10").identity(PROFILES["full"]) == {
        "architecture": {"kind": "vae", "latent_dim": 10}, "train": {"epochs": 400},
        "data": {"dataset": "mnist", "train_subset": None}, "code_version": 1,
    }
    assert get_experiment("mog-z10-m1000").identity(PROFILES["cpu"])["architecture"] == {
        "kind": "mog", "latent_dim": 10, "n_components": 1000}
    assert TrainConfig().recipe() == {} and TrainConfig(epochs=400).recipe() == {"epochs": 400}
    for name, exp in EXPERIMENTS.items():
        if not name.startswith("tw-"):
            assert {"network", "hidden_layers", "pseudo_inputs"}.isdisjoint(exp.architecture()), name
    for profile in ("smoke", "full"):
        assert PROFILES[profile].recipe == ()
    assert PROFILES["cpu"].recipe == (("lr_decay_every", 5),)  # the original schedule's first decay only


def test_state_dict_keys_of_the_original_models_are_unchanged():
    mlp = ["encoder.hidden.weight", "encoder.hidden.bias", "encoder.out.weight", "encoder.out.bias",
           "decoder.hidden.weight", "decoder.hidden.bias", "decoder.out.weight", "decoder.out.bias"]
    assert list(get_experiment("vae-z10").build().state_dict()) == mlp
    assert list(get_experiment("mog-z10-m1000").build().state_dict()) == mlp + [
        "prior.means", "prior.logvars", "prior._fixed_logits"]
    assert list(get_experiment("vamp-z10-k500").build().state_dict()) == mlp + ["prior.pseudo_logits"]


def test_the_tw_profile_carries_their_recipe():
    config = get_experiment("tw-standard-z40").train_config(PROFILES["tw"])
    assert (config.epochs, config.batch_size, config.lr, config.lr_at(1999)) == (2000, 100, 5e-4, 5e-4)
    assert (config.kl_warmup_epochs, config.early_stopping_patience) == (100, 50)
    assert (config.optimizer, config.kl_estimate) == ("adam-normgrad", "sample")
    tw = PROFILES["tw"]
    assert (tw.iw_samples, tw.iw_images, tw.train_subset, tw.test_subset) == (5000, None, None, None)
    assert dict(with_epochs(tw, 3).recipe) == dict(tw.recipe)
    with pytest.raises(ValueError, match="not TrainConfig options"):
        dataclasses.replace(tw, recipe=(("momentum", 0.9),))


# -- warm-up, early stopping, optimiser, KL estimate ---------------------------------------------
def test_kl_warmup_is_epoch_over_warmup_capped_at_one():
    config = TrainConfig(epochs=300, kl_warmup_epochs=100)
    # their beta = epoch / warmup with epochs counted from 1; beta_at counts from 0
    assert [config.beta_at(e) for e in (0, 1, 49, 98, 99, 100, 250)] == [0.01, 0.02, 0.5, 0.99, 1.0, 1.0, 1.0]
    assert TrainConfig().beta_at(0) == 1.0
    with pytest.raises(ValueError, match="kl_warmup_epochs"):
        TrainConfig(kl_warmup_epochs=-1)
    with pytest.raises(ValueError, match="early_stopping_patience"):
        TrainConfig(early_stopping_patience=0)
    with pytest.raises(ValueError, match="unknown optimizer"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="not to objective='iwae'"):
        TrainConfig(objective="iwae", kl_warmup_epochs=10)


def test_early_stopping_rule_is_theirs():
    stop = EarlyStopping(patience=2)
    losses = [5, 4, 3, 3.5, 3.2, 3.1]  # best at epoch 3, then three epochs without a new best
    flags = [stop.update(e, loss) for e, loss in enumerate(losses, 1)]
    assert flags == [True, True, True, False, False, False]
    assert (stop.best, stop.best_epoch, stop.bad_epochs, stop.stopped) == (3, 3, 3, True)
    # During warm-up the count is held at 0: with their defaults (warm-up 100, patience 50) and no
    # improvement after epoch 1, the first epoch that can stop is 150.
    stop = EarlyStopping(patience=50, warmup=100)
    stopped_at = next(e for e in range(1, 2001) if (stop.update(e, 100.0 if e == 1 else 101.0), stop.stopped)[1])
    assert stopped_at == 150 and stop.best_epoch == 1
    assert EarlyStopping(patience=1).update(1, math.nan) is False  # a NaN is never a new best


def test_adam_normgrad_matches_their_optimizer():
    torch.manual_seed(0)
    w = torch.randn(5, 3, requires_grad=True)
    grads = [torch.randn(5, 3) * s for s in (1.0, 10.0, 0.1)]
    opt = torch.optim.Adam([w], lr=5e-4)
    ref, m, v = w.detach().clone(), torch.zeros(5, 3), torch.zeros(5, 3)
    for step, g in enumerate(grads, 1):
        w.grad = g.clone()
        train_module.normalise_gradients([w])
        opt.step()
        gn = g / (g.norm() + 1e-7)  # utils/optimizer.py, AdamNormGrad.step
        m, v = 0.9 * m + 0.1 * gn, 0.999 * v + 0.001 * gn * gn
        ref -= 5e-4 * math.sqrt(1 - 0.999**step) / (1 - 0.9**step) * m / (v.sqrt() + 1e-8)
    torch.testing.assert_close(w.detach(), ref, rtol=1e-5, atol=1e-7)


def test_sampled_kl_averages_to_the_closed_form():
    torch.manual_seed(0)
    model = get_experiment("tw-standard-z40").build()
    x = binarize_static(prototype_images(1).reshape(1, -1)).expand(20000, -1)
    with torch.no_grad():
        sampled, exact = model.elbo(x, kl_estimate="sample").kl, model.elbo(x[:1]).kl
    assert sampled.mean().item() == pytest.approx(exact.item(), abs=4 * sampled.std().item() / math.sqrt(20000))
    with pytest.raises(ValueError, match="unknown kl_estimate"):
        model.elbo(x[:1], kl_estimate="exact")


# -- fit with early stopping -----------------------------------------------------------------------
SCRIPT = [5, 4, 3, 2.5, 2.4, 2.6, 2.7, 2.8, 2.9, 3.0]  # best at epoch 5; patience 2 stops after epoch 8


@pytest.fixture()
def scripted_validation(monkeypatch):
    """The validation loss of epoch e is SCRIPT[e-1] * 1000 plus the real one (so its noise still counts);
    the model's weights at every validation are recorded."""
    real, seen = train_module.evaluate_elbo, {"calls": 0, "weights": []}

    def fake(model, x, batch_size=1000, kl_estimate="analytic"):
        out = real(model, x, batch_size, kl_estimate)
        if x.shape[0] == 37:  # the validation set of these tests
            seen["weights"].append({k: v.clone() for k, v in model.state_dict().items()})
            out = {**out, "neg_elbo": SCRIPT[seen["calls"]] * 1000 + out["neg_elbo"]}
            seen["calls"] += 1
        return out

    monkeypatch.setattr(train_module, "evaluate_elbo", fake)
    return seen


def tw_model():
    torch.manual_seed(0)
    return dataclasses.replace(get_experiment("tw-mog-z40-m500"), n_components=5, hidden_dim=32).build()


TW_SMALL = TrainConfig(epochs=10, batch_size=50, lr=5e-4, lr_decay=1.0, kl_warmup_epochs=3,
                       early_stopping_patience=2, optimizer="adam-normgrad", kl_estimate="sample")


def same_weights(a, b):
    assert list(a) == list(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_early_stopping_stops_after_patience_and_keeps_the_best_weights(scripted_validation, tmp_path):
    images, valid = prototype_images(200), prototype_images(37, seed=3)
    model = tw_model()
    path = tmp_path / "checkpoint.pt"
    history = fit(model, images, TW_SMALL, valid_images=valid, checkpoint=path, progress=False)
    assert history.epoch == [1, 2, 3, 4, 5, 6, 7, 8]
    assert history.beta == pytest.approx([1 / 3, 2 / 3, 1, 1, 1, 1, 1, 1])
    assert history.best_epoch() == 5
    same_weights(model.state_dict(), scripted_validation["weights"][4])
    state = load_checkpoint(path)
    assert state["finished"] is True and "optimizer" not in state and "best_model" not in state
    assert state["early_stopping"] == {"patience": 2, "warmup": 3, "best": history.valid_neg_elbo[4],
                                       "best_epoch": 5, "bad_epochs": 3, "stopped": True}
    same_weights(state["model"], model.state_dict())
    again = tw_model()  # a finished checkpoint is not trained further
    assert fit(again, images, TW_SMALL, valid_images=valid, checkpoint=path, progress=False).epoch == history.epoch
    same_weights(again.state_dict(), model.state_dict())


def test_without_a_stop_the_run_ends_at_its_last_epoch_with_the_best_weights(scripted_validation):
    model = tw_model()
    config = dataclasses.replace(TW_SMALL, epochs=7)  # best at 5, not yet stopped at 7
    history = fit(model, prototype_images(200), config, valid_images=prototype_images(37, seed=3), progress=False)
    assert history.epoch == list(range(1, 8))
    same_weights(model.state_dict(), scripted_validation["weights"][4])


@pytest.mark.parametrize("interrupt_after", [3, 6])  # before the best epoch, and after it
def test_an_interrupted_early_stopping_run_resumes_to_the_same_result(scripted_validation, monkeypatch, tmp_path,
                                                                       interrupt_after):
    images, valid, test = prototype_images(200), prototype_images(37, seed=3), prototype_images(20, seed=4)
    straight = tw_model()
    h1 = fit(straight, images, TW_SMALL, valid_images=valid, test_images=test, checkpoint=tmp_path / "a.pt",
             progress=False)

    scripted_validation["calls"] = 0
    real_save, saves = train_module.save_checkpoint, []

    def save_then_crash(path, payload):
        real_save(path, payload)
        saves.append(payload["epoch"])
        if payload["epoch"] == interrupt_after:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_crash)
    path = tmp_path / "b.pt"
    with pytest.raises(KeyboardInterrupt):
        fit(tw_model(), images, TW_SMALL, valid_images=valid, test_images=test, checkpoint=path, progress=False)
    resumed = tw_model()
    h2 = fit(resumed, images, TW_SMALL, valid_images=valid, test_images=test, checkpoint=path, progress=False)
    assert saves == list(range(1, 9))
    same_weights(resumed.state_dict(), straight.state_dict())
    for column in ("epoch", "train_loss", "valid_neg_elbo", "test_neg_elbo", "beta", "lr"):
        # repr: the test curve is NaN on epochs it is not scored, and nan != nan
        assert list(map(repr, getattr(h1, column))) == list(map(repr, getattr(h2, column))), column
    assert load_checkpoint(path)["early_stopping"] == load_checkpoint(tmp_path / "a.pt")["early_stopping"]


def test_validation_images_are_required_for_early_stopping():
    with pytest.raises(ValueError, match="needs validation images"):
        fit(tw_model(), prototype_images(50), TW_SMALL, progress=False)


def test_validation_curve_is_their_loss_on_a_fixed_draw():
    images, valid = prototype_images(100), prototype_images(37, seed=3)
    model = tw_model()
    history = fit(model, images, dataclasses.replace(TW_SMALL, epochs=2), valid_images=valid, progress=False)
    # epoch 2 was the best or not; recompute the recorded value for the weights that were kept
    best = history.best_epoch()
    torch.manual_seed(_epoch_seed(0, best - 1) + 2)
    again = evaluate_elbo(model, binarize_static(valid.reshape(37, -1), 1), kl_estimate="sample")["neg_elbo"]
    assert again == pytest.approx(history.valid_neg_elbo[best - 1], abs=1e-4)


def test_get_or_train_uses_the_classic_validation_split(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELIB_CACHE", str(tmp_path / "runs"))
    profile = with_train_subset(with_epochs(PROFILES["tw"], 2), 300)
    profile = dataclasses.replace(profile, test_subset=200)
    run = get_or_train("tw-standard-z40", profile, progress=False, device="cpu")
    h = run.history
    assert h.epoch == [1, 2] and h.beta == [0.01, 0.02]
    assert all(math.isfinite(v) for v in h.valid_neg_elbo)
    # with early stopping the test curve is scored every TEST_CURVE_EVERY epochs and at the last one
    assert math.isnan(h.test_neg_elbo[0]) and math.isfinite(h.test_neg_elbo[1])
    state = load_checkpoint(run.checkpoint)
    assert state["finished"] is True and state["early_stopping"]["best_epoch"] == h.best_epoch()
    stamp = run.checkpoint.stat().st_mtime_ns
    again = get_or_train("tw-standard-z40", profile, progress=False, device="cpu")
    assert run.checkpoint.stat().st_mtime_ns == stamp
    same_weights(again.model.state_dict(), run.model.state_dict())
