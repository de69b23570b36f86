"""Every photo of the course (scikit-image's, Tux Paint's stamps, the wallpapers), the pool and its crops."""

from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data as skdata

from cnnlib import photos, topk


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


def _flat_pool(n=5):
    """Images of one flat grey level each (i / 10) and different sizes: a crop's grey level names its image."""
    return [torch.full((3, 20 + 7 * i, 30 + 3 * i), i / 10) for i in range(n)]


def test_random_crops_return_the_image_each_crop_is_cut_from():
    pool = _flat_pool()
    crops, sources = photos.random_crops(pool, 40, 8, seed=5, return_sources=True)
    assert sources.dtype == torch.int64 and sources.shape == (40,)
    torch.testing.assert_close(crops, photos.random_crops(pool, 40, 8, seed=5))  # the same crops as without
    level = crops.mean((1, 2, 3))  # (40,) each crop's grey level, its source's i / 10
    torch.testing.assert_close(level, sources.float() / 10)
    assert len(sources.unique()) == 5  # every image drawn: the ids are not all one value


def test_source_ids_count_a_repeated_photo_once():
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.rand(3, 12, 16, generator=g) for _ in range(3))
    pool = [a, b, a.clone(), torch.rand(3, 16, 12, generator=g), c, b.clone(), a.clone()]
    assert photos.source_ids(pool).tolist() == [0, 1, 0, 3, 4, 1, 0]
    assert photos.source_ids([a, a + 1e-6]).tolist() == [0, 1]  # equal pixels only, not close ones
    with pytest.raises(ValueError, match="source_ids: expected a non-empty list"):
        photos.source_ids([])
    with pytest.raises(ValueError, match=r"source_ids: expected pool\[1\] of shape \(C, H, W\)"):
        photos.source_ids([a, a[None]])


def test_the_pool_holds_one_photo_twice():
    pool = photos.load_pool()
    ids = photos.source_ids(pool)
    repeated = [i for i in range(len(pool)) if int(ids[i]) != i]
    assert len(repeated) == 1 and len(ids.unique()) == len(pool) - 1  # scikit-image's cat is chelsea
    assert torch.equal(pool[repeated[0]], pool[int(ids[repeated[0]])])


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


@pytest.mark.parametrize("package, variable", [(p, v) for p, (v, _) in photos.PACKAGES.items()])
def test_load_pool_names_a_missing_package_and_how_to_install_it(package, variable, tmp_path, monkeypatch):
    assert len(photos.package_files(package)) > 0  # installed here (make data)
    monkeypatch.setenv(variable, str(tmp_path / "hidden"))
    assert photos.package_files(package) == []
    with pytest.raises(FileNotFoundError, match=rf"load_pool: the photo pool lacks Debian's {package} \(0 .*"
                                                rf"'sudo apt-get install {package}'.*{variable}"):
        photos.load_pool()
    # the other sources still load when this one is left out on purpose
    if package == "tuxpaint-stamps-default":
        pool = photos.load_pool(max_side=64, stamps=False)
        assert len(pool) == len(photos.MATE_NATURE) + len(photos.PLASMA_PHOTOS) + 8
        assert all(min(p.shape[1:]) <= 64 for p in pool[:21])


def test_the_pool_order_is_mate_plasma_skimage_stamps():
    files = photos.package_files("mate-backgrounds") + photos.package_files("plasma-workspace-wallpapers")
    assert [f.stem for f in files[:12]] == list(photos.MATE_NATURE)
    assert [f.parts[-4] for f in files[12:]] == list(photos.PLASMA_PHOTOS)
    for f in files[12:]:  # the widest of the resolutions shipped
        widths = [int(g.stem.split("x")[0]) for g in f.parent.glob("*.jpg") if g.stem.split("x")[0].isdigit()]
        assert int(f.stem.split("x")[0]) == max(widths)


def _copy_of(package, tmp_path, monkeypatch):
    """A copy of the files of ``package`` that the pool reads, and the environment pointed at it."""
    import shutil

    variable, default = photos.PACKAGES[package]
    for f in photos.package_files(package):
        target = tmp_path / f.relative_to(default)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, target)
    monkeypatch.setenv(variable, str(tmp_path))
    return tmp_path


def test_fingerprint_is_of_the_files_and_check_pool_names_what_differs(tmp_path, monkeypatch):
    import hashlib

    package = "mate-backgrounds"
    recorded = photos.pool_fingerprint((package,))
    files = photos.package_files(package)
    lines = "".join(f"{f.name}\t{f.stat().st_size}\t{hashlib.sha256(f.read_bytes()).hexdigest()}\n" for f in files)
    assert recorded[package]["sha256"] == hashlib.sha256(lines.encode()).hexdigest()  # an independent digest
    assert recorded[package]["files"] == 12 and recorded[package]["bytes"] == sum(f.stat().st_size for f in files)
    copy = _copy_of(package, tmp_path, monkeypatch)
    assert photos.pool_fingerprint((package,))[package]["sha256"] == recorded[package]["sha256"]  # same files
    photos.check_pool("f", recorded, "the result", "re-create it")  # passes
    with open(copy / "Dune.jpg", "ab") as fh:  # another version of one photo
        fh.write(b"\0")
    with pytest.raises(ValueError, match=r"f: the result was made from other mate-backgrounds photos: 12 files.*"
                                         r"Install version .* of mate-backgrounds, or re-create it"):
        photos.check_pool("f", recorded, "the result", "re-create it")
    (copy / "Dune.jpg").unlink()  # one photo missing
    with pytest.raises(FileNotFoundError, match=r"f: the photo pool lacks Debian's mate-backgrounds \(11 of its 12 "
                                                r"files .*the result was made from the pool with all of them"):
        photos.check_pool("f", recorded, "the result", "re-create it")
    with pytest.raises(ValueError, match="f: the result records no photo-pool fingerprint"):
        photos.check_pool("f", None, "the result", "re-create it")
    with pytest.raises(ValueError, match="pool_fingerprint: expected sources among"):
        photos.pool_fingerprint(("wallpapers",))


@pytest.mark.parametrize("package", list(photos.PACKAGES))
def test_hiding_a_package_refuses_every_shipped_result_made_from_the_pool(package, tmp_path, monkeypatch):
    from cnnlib import distill, sanity, topk, transfer

    variable = photos.PACKAGES[package][0]
    monkeypatch.setenv(variable, str(tmp_path / "hidden"))
    install = rf"'sudo apt-get install {package}'"
    with pytest.raises(FileNotFoundError, match=rf"load_shipped_topk: the photo pool lacks Debian's {package} \(0 "
                                                rf"of its \d+ files.*the shipped top-k .* {install}"):
        topk.load_shipped_topk()
    with pytest.raises(FileNotFoundError, match=rf"load: the photo pool lacks Debian's {package}.*{install}"):
        distill.load("zf7s2", "cpu")
    assert distill.load("zf7s2", "cpu", check_pool=False).steps > 0  # on one's own images, no pool needed
    with pytest.raises(FileNotFoundError, match=rf"load_results: the photo pool lacks Debian's {package}.*{install}"):
        sanity.load_results()
    if package == "tuxpaint-stamps-default":  # chapter 8's table was made from the stamps only
        with pytest.raises(FileNotFoundError, match=rf"shipped_finetune_table: .*{package}.*{install}"):
            transfer.shipped_finetune_table()
    else:
        assert "fine-tuned" in transfer.shipped_finetune_table()[0]


def test_check_shipped_reads_the_fingerprint_beside_the_result(tmp_path, monkeypatch):
    from cnnlib import snapshots

    (tmp_path / "result.pt").write_bytes(b"mined")
    snapshots.record_in_manifest(tmp_path, "result.pt", pool=photos.pool_fingerprint(("mate-backgrounds",)))
    photos.check_shipped("load_x", tmp_path, "result.pt", "the result", "redo")  # the pool at hand: passes
    monkeypatch.setenv("CNNLIB_MATE_NATURE", str(tmp_path / "hidden"))
    with pytest.raises(FileNotFoundError, match="load_x: the photo pool lacks Debian's mate-backgrounds"):
        photos.check_shipped("load_x", tmp_path, "result.pt", "the result", "redo")
    snapshots.record_in_manifest(tmp_path, "result.pt")  # a result that records no pool is refused too
    with pytest.raises(ValueError, match="load_x: the result records no photo-pool fingerprint.*; redo"):
        photos.check_shipped("load_x", tmp_path, "result.pt", "the result", "redo")


@pytest.mark.parametrize("name", photos.PHOTOS + photos.TEXTURES)
def test_photos_load_offline(name):
    raw = np.asarray(getattr(skdata, name)())
    x = photos.load_photo(name)
    assert x.dtype == torch.float32 and x.shape[1:] == raw.shape[:2]
    if raw.dtype == np.uint8:  # the pixels themselves, / 255, channels first
        want = torch.from_numpy(raw.astype(np.float32) / 255)
        torch.testing.assert_close(x, want[None] if raw.ndim == 2 else want.permute(2, 0, 1)[:3])
    else:  # other dtypes are stretched to [0, 1]
        assert float(x.min()) == 0 and float(x.max()) == 1
    gray = photos.load_photo(name, gray=True)
    if x.shape[0] == 3:  # ITU-R 601 luminance
        torch.testing.assert_close(gray[0], 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])
    else:
        torch.testing.assert_close(gray, x)
    small = photos.load_photo(name, size=64)
    h, w = x.shape[1:]
    assert min(small.shape[1:]) == 64 and small.shape[1:] == (round(h * 64 / min(h, w)), round(w * 64 / min(h, w)))
    # an antialiased resize keeps each channel's mean colour (aliasing would not, on fine textures)
    torch.testing.assert_close(small.mean((1, 2)), x.mean((1, 2)), atol=0.01, rtol=0)


def test_unknown_photo():
    with pytest.raises(ValueError, match="load_photo: expected name to be one of"):
        photos.load_photo("mona_lisa")


def test_stamps_are_photos_on_gray():
    X, y, classes = photos.load_stamps(size=48, categories=("animals/mammals", "food/fruit"))
    assert X.shape == (67 + 41, 3, 48, 48) and classes == ["mammals", "fruit"]
    assert torch.bincount(y).tolist() == [67, 41]
    corners = X[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert torch.allclose(corners, torch.full_like(corners, 128 / 255), atol=0.02)  # background where nothing is
    with pytest.raises(ValueError, match="no such categories"):
        photos.load_stamps(categories=("animals/dragons",))
    with pytest.raises(FileNotFoundError, match="tuxpaint-stamps-default"):
        photos.load_stamps(root="/nonexistent")


def test_min_per_class_keeps_the_large_categories_relabelled():
    cats = ("animals/mammals", "food/fruit", "animals/insects")
    X, y, names = photos.load_stamps(size=16, categories=cats)
    counts = torch.bincount(y).tolist()
    cut = sorted(counts)[1]  # keeps the two largest categories
    Xk, yk, kept = photos.load_stamps(size=16, categories=cats, min_per_class=cut)
    keep = [c for c in range(3) if counts[c] >= cut]
    assert kept == [names[c] for c in keep] and torch.bincount(yk).tolist() == [counts[c] for c in keep]
    assert torch.equal(Xk, X[torch.isin(y, torch.tensor(keep))])  # same images, same order
    with pytest.raises(ValueError, match="no category has"):
        photos.load_stamps(size=16, categories=cats, min_per_class=max(counts) + 1)


def test_photos_only_leaves_out_the_drawings():
    assert photos.is_stamp_drawing("animals/birds/cartoon/tux.png")
    assert photos.is_stamp_drawing("animals/insects/bee.png")
    assert not photos.is_stamp_drawing("animals/birds/owl.png") and not photos.is_stamp_drawing("cartoonist/x.png")
    cats = ("animals/insects", "food/fruit")
    X, y, _ = photos.load_stamps(size=16, categories=cats)
    Xp, yp, _ = photos.load_stamps(size=16, categories=cats, photos_only=True)
    root = Path(photos.TUXPAINT_STAMPS_DIR)
    drawings = sum(photos.is_stamp_drawing(f.relative_to(root).as_posix())
                   for c in cats for f in (root / c).rglob("*.png"))
    assert drawings > 10 and len(Xp) == len(X) - drawings


def test_seeded_crops_can_be_made_again_one_by_one():
    g = torch.Generator().manual_seed(0)
    pool = [torch.rand(3, 50, 70, generator=g), torch.rand(3, 40, 40, generator=g)]
    crops = photos.seeded_crops(pool, range(6), seed=100, size=24)
    assert crops.shape == (6, 3, 24, 24)
    for i in (0, 4):  # crop i is random_crops with seed + i, whatever else is made with it
        torch.testing.assert_close(crops[i], photos.random_crops(pool, 1, 24, seed=100 + i)[0])
        torch.testing.assert_close(photos.seeded_crops(pool, [i], seed=100, size=24)[0], crops[i])
    torch.testing.assert_close(photos.seeded_crops(pool, [5, 2], seed=100, size=24), crops[[5, 2]])
    assert not torch.allclose(crops[0], crops[1])


def test_seeded_sources_are_the_images_the_seeded_crops_are_cut_from():
    pool = [torch.full((3, 30 + 5 * i, 40), i / 10) for i in range(7)]  # flat grey i / 10: the level names it
    indices = [0, 3, 17, 250, 4000, 9]
    crops, sources = photos.seeded_crops(pool, indices, seed=2014, size=16, return_sources=True)
    torch.testing.assert_close(crops, photos.seeded_crops(pool, indices, seed=2014, size=16))
    torch.testing.assert_close(crops.mean((1, 2, 3)), sources.float() / 10)
    assert torch.equal(photos.seeded_sources(len(pool), indices, 2014), sources)
    many = photos.seeded_sources(len(pool), range(200), 2014)
    assert set(many.tolist()) == set(range(7))  # uniform over the pool, not one image
    with pytest.raises(ValueError, match="seeded_sources: expected pool_size"):
        photos.seeded_sources(0, [1], 2014)


def test_photo_pool_is_the_pool_plus_the_text_image():
    pool, base = photos.photo_pool(), photos.load_pool()
    assert len(pool) == len(base) + 1 == topk.load_shipped_topk()[1]["pool"]  # what the top-k were mined over
    for a, b in zip(pool[:-1], base):
        assert torch.equal(a, b)
    text = torch.from_numpy(np.asarray(skdata.text(), dtype=np.float32) / 255)
    assert torch.equal(pool[-1], text.expand(3, -1, -1))  # black print on white, in three equal channels


def test_check_images_names_the_function_and_the_bad_image():
    good = torch.rand(3, 8, 8)
    photos.check_images("f", [good, good])  # no error
    for pool, error, message in (
            ([], ValueError, "^f: expected a non-empty list of images"),
            (good, ValueError, "^f: expected a non-empty list of images .* got Tensor"),
            ([good, torch.rand(1, 8, 8)], ValueError, r"^f: expected 3 channels in pool\[1\], got 1"),
            ([good, good.clone().fill_(float("nan"))], ValueError, r"^f: .*pool\[1\].*finite"),
            ([good.to(torch.uint8)], TypeError, r"^f: expected pool\[0\] to be a floating-point tensor")):
        with pytest.raises(error, match=message):
            photos.check_images("f", pool)
