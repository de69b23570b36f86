"""The offline natural-photo pool and its random crops."""

import pytest
import torch

from cnnlib import photos


def _pool():
    g = torch.Generator().manual_seed(0)
    return [torch.rand(3, 40, 60, generator=g), torch.rand(3, 30, 30, generator=g)]


def test_random_crops_shape_range_and_seed():
    pool = _pool()
    a = photos.random_crops(pool, 7, 16, seed=3)
    assert a.shape == (7, 3, 16, 16) and a.dtype == torch.float32
    assert 0 <= float(a.min()) and float(a.max()) <= 1
    torch.testing.assert_close(a, photos.random_crops(pool, 7, 16, seed=3))
    assert not torch.equal(a, photos.random_crops(pool, 7, 16, seed=4))


def test_full_scale_crop_of_a_square_image_is_the_image():
    img = torch.rand(3, 16, 16)
    out = photos.random_crops([img], 5, 16, scale=(1.0, 1.0), flip=False)
    for crop in out:  # the whole image, resized to its own size: unchanged
        torch.testing.assert_close(crop, img)


def test_crops_come_from_the_image():
    # an image whose columns are constant colours: every crop's pixels are colours of the image
    img = torch.zeros(3, 32, 32)
    img[0] = 1.0  # pure red everywhere
    out = photos.random_crops([img], 4, 8)
    torch.testing.assert_close(out, img[:, :8, :8].expand(4, 3, 8, 8))


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(n=0, size=8), ValueError, "random_crops: expected n in"),
    (dict(n=2, size=8.5), TypeError, "random_crops: expected size to be an integer"),
    (dict(n=2, size=8, scale=(0.5, 0.2)), ValueError, "random_crops: expected 0 < scale"),
])
def test_bad_arguments(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        photos.random_crops(_pool(), **kwargs)


def test_bad_pool():
    with pytest.raises(ValueError, match="random_crops: expected a non-empty list"):
        photos.random_crops([], 2, 8)
    with pytest.raises(ValueError, match=r"random_crops: expected 3 channels in pool\[0\]"):
        photos.random_crops([torch.rand(1, 20, 20)], 2, 8)
    with pytest.raises(TypeError, match=r"random_crops: expected pool\[0\] to be a floating-point"):
        photos.random_crops([torch.zeros(3, 20, 20, dtype=torch.uint8)], 2, 8)


def test_wallpaper_files_missing_folders_give_nothing(tmp_path):
    assert photos.wallpaper_files(tmp_path / "a", tmp_path / "b") == []
