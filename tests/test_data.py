"""Loaders return the documented layout, splits and labels; bad names and missing files say what to do."""

import gzip

import numpy as np
import pytest
import torch

from cnnlib import data


def _check_layout(X, y, n, c, h, w):
    assert X.dtype == torch.float32 and y.dtype == torch.int64
    assert X.shape == (n, c, h, w) and y.shape == (n,)
    assert float(X.min()) >= 0.0 and float(X.max()) <= 1.0


@pytest.mark.parametrize("split,n", [("train", 60000), ("test", 10000)])
def test_fashion_mnist(split, n):
    X, y = data.load_fashion_mnist(split)
    _check_layout(X, y, n, 1, 28, 28)
    assert torch.bincount(y).tolist() == [n // 10] * 10  # balanced: 6,000 / 1,000 per class
    assert float(X.max()) == 1.0


def test_mnist_5k_split_is_fixed_and_disjoint():
    Xtr, ytr = data.load_mnist("train")
    Xte, yte = data.load_mnist("test")
    _check_layout(Xtr, ytr, 4000, 1, 28, 28)
    _check_layout(Xte, yte, 1000, 1, 28, 28)
    assert torch.bincount(yte).tolist() == [100] * 10
    assert torch.equal(data.load_mnist("test")[0], Xte)
    # no test image appears among the training images
    tr = {hash(x.numpy().tobytes()) for x in Xtr}
    assert sum(hash(x.numpy().tobytes()) in tr for x in Xte) < 5  # MNIST holds a few exact duplicates


def test_digits():
    Xtr, ytr = data.load_digits("train")
    Xte, yte = data.load_digits("test")
    assert len(Xtr) + len(Xte) == 1797
    _check_layout(Xte, yte, len(Xte), 1, 8, 8)
    assert set(ytr.tolist()) == set(range(10))


def test_load_dataset_dispatch_and_errors():
    X, y = data.load_dataset("digits", "test")
    assert X.shape[1:] == (1, 8, 8)
    assert data.class_names("fashion-mnist")[9] == "Ankle boot"
    with pytest.raises(ValueError, match="load_dataset: expected name to be one of .*got 'cifar10'"):
        data.load_dataset("cifar10")
    with pytest.raises(ValueError, match="split"):
        data.load_fashion_mnist("validation")


def test_fashion_mnist_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.load_fashion_mnist("train", root=tmp_path)


def _write_idx(path, arr):
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_fashion_mnist_from_a_user_folder(tmp_path):
    imgs = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", imgs)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([4, 0, 9]))
    X, y = data.load_fashion_mnist("test", root=tmp_path)
    assert y.tolist() == [4, 0, 9]
    assert torch.allclose(X[:, 0] * 255, torch.from_numpy(imgs).float())


def test_truncated_idx_is_refused(tmp_path):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + bytes(5))
    with pytest.raises(ValueError, match="header says"):
        data.read_idx(path)
    with gzip.open(path, "wb") as f:
        f.write(b"PK\x03\x04not idx")
    with pytest.raises(ValueError, match="magic"):
        data.read_idx(path)


def test_toy_problems():
    X, y = data.make_separable(n=50, margin=0.2)
    assert X.shape == (50, 2) and set(y.tolist()) == {0, 1}
    X, y = data.xor()
    assert X.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]] and y.tolist() == [0, 1, 1, 0]


def _tiny_tree(root):
    from PIL import Image

    colours = {"apple": (200, 30, 30), "leaf": (30, 160, 40)}
    for c, rgb in colours.items():
        (root / c).mkdir(parents=True)
        for k in range(4):
            Image.new("RGB" if k else "L", (40 + 10 * k, 30), rgb if k else 128).save(root / c / f"img_{k}.png")
    (root / "apple" / "notes.txt").write_text("not an image")
    return colours


def test_image_folder_reads_a_tree(tmp_path):
    colours = _tiny_tree(tmp_path)
    ds = data.ImageFolder(tmp_path, size=16)
    assert ds.classes == ["apple", "leaf"] and len(ds) == 8
    x, label = ds[1]
    assert x.shape == (3, 16, 16) and label == 0
    torch.testing.assert_close(x[:, 8, 8], torch.tensor(colours["apple"]) / 255.0, atol=1e-3, rtol=0)
    gray, _ = ds[0]
    assert torch.allclose(gray[0], gray[1]) and abs(float(gray.mean()) - 128 / 255) < 1e-3
    assert ds.targets.tolist() == [0] * 4 + [1] * 4


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        data.ImageFolder(tmp_path / "nope")
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(ValueError, match="no images"):
        data.ImageFolder(tmp_path)


def test_split_per_class():
    labels = torch.tensor([0] * 10 + [1] * 7)
    tr, te = data.split_per_class(labels, n_train=5, seed=1)
    assert torch.bincount(labels[tr]).tolist() == [5, 5]
    assert len(set(tr.tolist()) & set(te.tolist())) == 0 and len(tr) + len(te) == 17
    assert torch.equal(data.split_per_class(labels, 5, seed=1)[0], tr)
    with pytest.raises(ValueError, match="class 1 has 7 images"):
        data.split_per_class(labels, n_train=7)
