"""fit: it learns, it resumes to the same weights, it stops cleanly on NaN; checkpoints are safe."""

import dataclasses

import pytest
import torch

from vaelib.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from vaelib.experiments import get_experiment
from vaelib.data import binarize_dynamic, binarize_static
from vaelib.train import TrainConfig, TrainingDiverged, fit, model_inputs


def prototype_images(n=600, seed=0):
    """uint8 images made of three noisy stroke prototypes: structure a VAE can learn in seconds."""
    gen = torch.Generator().manual_seed(seed)
    protos = torch.zeros(3, 28, 28)
    protos[0, 4:24, 12:16] = 1
    protos[1, 12:16, 4:24] = 1
    protos[2, 6:22, 6:22] = torch.eye(16) + torch.eye(16).flip(0)
    labels = torch.randint(0, 3, (n,), generator=gen)
    noisy = protos[labels] * 0.9 + 0.05 * torch.rand(n, 28, 28, generator=gen)
    return (noisy * 255).round().to(torch.uint8)


def small_model(name="mog-z2-m10"):
    torch.manual_seed(0)
    return get_experiment(name).build()


def test_training_lowers_the_loss():
    images = prototype_images()
    history = fit(small_model(), images, TrainConfig(epochs=4, batch_size=50), test_images=images[:100], progress=False)
    assert history.train_loss[-1] < 0.8 * history.train_loss[0]
    assert history.test_neg_elbo[-1] < history.test_neg_elbo[0]
    assert history.epoch == [1, 2, 3, 4]
    assert history.lr == pytest.approx([1e-3, 1e-4, 1e-5, 1e-6])  # x0.1 every epochs/4, like 100 of the original 400


def test_resumed_run_ends_with_the_same_weights(tmp_path):
    images = prototype_images(400)
    config = TrainConfig(epochs=4, batch_size=50, lr_decay_every=2)
    straight = small_model()
    fit(straight, images, config, progress=False)

    interrupted = small_model()
    path = tmp_path / "run" / "checkpoint.pt"
    fit(interrupted, images, dataclasses.replace(config, epochs=2, lr_decay_every=2), checkpoint=path, progress=False)
    # Pretend the first run was the 4-epoch one stopped after epoch 2: rewrite its identity accordingly.
    state = load_checkpoint(path)
    state["train_config"] = config.recipe()
    save_checkpoint(path, {k: v for k, v in state.items() if k not in ("format", "format_version")})
    resumed = small_model()
    history = fit(resumed, images, config, checkpoint=path, progress=False)
    assert history.epoch == [1, 2, 3, 4]
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_nan_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    images = prototype_images(200)  # 4 batches of 50 per epoch
    model = small_model()
    calls = 0
    clean_loss = model.loss

    def loss_that_breaks_in_epoch_two(x):
        nonlocal calls
        calls += 1
        return clean_loss(x) * (float("nan") if calls > 4 else 1.0)

    model.loss = loss_that_breaks_in_epoch_two
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(TrainingDiverged, match="diverged in epoch 2.*last good state \\(epoch 1\\)"):
        fit(model, images, TrainConfig(epochs=3, batch_size=50), checkpoint=path, progress=False)
    state = load_checkpoint(path)
    assert state["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_bad_training_inputs_are_refused():
    model = small_model()
    with pytest.raises(TypeError, match="uint8"):
        fit(model, torch.rand(10, 28, 28), TrainConfig(epochs=1), progress=False)
    with pytest.raises(ValueError, match="model expects 784"):
        fit(model, torch.zeros(10, 20, 20, dtype=torch.uint8), TrainConfig(epochs=1), progress=False)
    with pytest.raises(ValueError, match="non-empty"):
        fit(model, torch.zeros(0, 28, 28, dtype=torch.uint8), TrainConfig(epochs=1), progress=False)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="unknown binarization"):
        TrainConfig(binarization="otsu")
    with pytest.raises(ValueError, match="unknown objective"):
        TrainConfig(objective="gan")


def test_iwae_objective_and_grey_targets_train():
    images = prototype_images(200)
    h = fit(small_model(), images, TrainConfig(epochs=2, batch_size=50, objective="iwae", iw_samples=5), progress=False)
    g = fit(small_model(), images, TrainConfig(epochs=2, batch_size=50, binarization="grey"), progress=False)
    assert h.train_loss[-1] < h.train_loss[0] and g.train_loss[-1] < g.train_loss[0]


def test_model_inputs_use_the_binarisations_of_vaelib_data():
    pixels = prototype_images(20).reshape(20, -1)
    gen_a, gen_b = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert torch.equal(model_inputs(pixels, "dynamic", gen_a), binarize_dynamic(pixels, gen_b))
    assert torch.equal(model_inputs(pixels, "static", seed=3), binarize_static(pixels, 3))
    assert torch.equal(model_inputs(pixels, "grey"), pixels.float() / 255)  # fit's grey test set: grey levels


def test_checkpoints_are_atomic_and_checked(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"meta": {"name": "a"}, "weights": torch.ones(3)})
    assert load_checkpoint(path, expect={"meta": {"name": "a"}})["weights"].sum() == 3
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary files left behind
    with pytest.raises(CheckpointError, match="different meta: name: file has 'a', expected 'b'"):
        load_checkpoint(path, expect={"meta": {"name": "b"}})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated, corrupt"):
        load_checkpoint(path)
    torch.save({"something": 1}, path)
    with pytest.raises(CheckpointError, match="not a vaelib checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_with_foreign_objects_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "vaelib-checkpoint", "x": Evil()}, path)
    with pytest.raises(CheckpointError, match="not a readable vaelib checkpoint"):
        load_checkpoint(path)
