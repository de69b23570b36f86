"""Top-k mining equals a brute-force search; receptive fields equal the support of a gradient."""

import pytest
import torch
import torch.nn as nn

from cnnlib import photos, topk
from cnnlib.models import ZFNetSmall, activations


def test_mining_equals_brute_force():
    torch.manual_seed(0)
    model = ZFNetSmall().double().eval()  # float64: batch size does not change the values, so no false ties
    X = torch.rand(37, 1, 28, 28, dtype=torch.float64)
    got = topk.mine_topk(model, X, ["conv2", "pool5"], k=5, batch_size=8, progress=False)
    acts = activations(model, X, ["conv2", "pool5"])
    for name in ("conv2", "pool5"):
        a = acts[name]  # (N, K, h, w)
        per_image, where = a.flatten(2).max(2)  # (N, K)
        want = per_image.topk(6, dim=0)
        torch.testing.assert_close(got[name].values, want.values[:5].T)
        # image indices are unique where no two images tie (dead maps tie at 0): there they must agree
        v = want.values.T  # (K, 6)
        untied = (v[:, :-1] > v[:, 1:]).all(1)
        assert untied.sum() > len(v) // 2
        assert torch.equal(got[name].image_index[untied], want.indices[:5].T[untied])
        w = a.shape[-1]
        pos = got[name].position
        for c in (0, 3):
            for n in range(5):
                img, (i, j) = int(got[name].image_index[c, n]), pos[c, n].tolist()
                assert float(a[img, c, i, j]) == float(got[name].values[c, n])
                assert int(where[img, c]) == i * w + j


def _per_source_reference(a: torch.Tensor, groups: torch.Tensor, k: int):
    """Brute force: for every map, each source's strongest image (its strongest unit), then the k best sources.
    ``a`` (N, K, h, w) activations; returns values and image indices, each (K, k)."""
    per_image = a.flatten(2).amax(2)  # (N, K)
    values, index = [], []
    for c in range(a.shape[1]):
        best = {}  # source -> (value, image)
        for n in range(len(a)):
            g, v = int(groups[n]), float(per_image[n, c])
            if g not in best or v > best[g][0]:
                best[g] = (v, n)
        ranked = sorted(best.values(), key=lambda t: -t[0])[:k]
        values.append([v for v, _ in ranked])
        index.append([n for _, n in ranked])
    return torch.tensor(values, dtype=a.dtype), torch.tensor(index)


@pytest.mark.parametrize("batch_size", [4, 64])
def test_mining_one_per_source_equals_brute_force(batch_size):
    torch.manual_seed(1)
    model = ZFNetSmall().double().eval()
    X = torch.rand(45, 1, 28, 28, dtype=torch.float64)
    groups = torch.randint(0, 12, (45,)) * 3 + 100  # 12 sources, ids not 0..11, images of a source scattered
    got = topk.mine_topk(model, X, ["conv2", "conv5"], k=6, batch_size=batch_size, progress=False, groups=groups)
    acts = activations(model, X, ["conv2", "conv5"])
    for name in ("conv2", "conv5"):
        values, index = _per_source_reference(acts[name], groups, 6)
        torch.testing.assert_close(got[name].values, values)
        live = values[:, -1] > 0  # dead maps tie at 0 between sources: their images are arbitrary
        assert live.sum() > len(values) // 2
        assert torch.equal(got[name].image_index[live], index[live])
        for c in range(len(values)):  # k sources, never one twice
            assert len(groups[got[name].image_index[c]].unique()) == 6


def test_without_groups_a_source_repeats_and_with_groups_it_does_not():
    # images 0..7 are slight variations of one image (one "photo" seen in 8 crops), 8..19 are others
    torch.manual_seed(2)
    model = ZFNetSmall().double().eval()
    X = torch.rand(20, 1, 28, 28, dtype=torch.float64)
    X[:8] = 2.0 * X[0] + 0.01 * torch.rand(8, 1, 28, 28, dtype=torch.float64)  # bright: strong everywhere
    groups = torch.cat([torch.zeros(8, dtype=torch.int64), torch.arange(1, 13)])
    old = topk.mine_topk(model, X, ["conv3"], k=9, progress=False)["conv3"]
    new = topk.mine_topk(model, X, ["conv3"], k=9, progress=False, groups=groups)["conv3"]
    old_sources = [len(groups[i].unique()) for i in old.image_index]
    assert sum(n < 9 for n in old_sources) > len(old_sources) // 2  # the old mining repeats the photo
    assert all(len(groups[i].unique()) == 9 for i in new.image_index)
    # each map's best image is the same either way: the per-source rule only drops weaker repeats
    torch.testing.assert_close(new.values[:, 0], old.values[:, 0])
    # every group of its own: the per-source mining is the per-image mining
    alone = topk.mine_topk(model, X, ["conv3"], k=9, progress=False, groups=torch.arange(20) * 7)["conv3"]
    torch.testing.assert_close(alone.values, old.values)


def test_strongest_per_group_by_hand():
    values = torch.tensor([[5.0, 1.0], [4.0, 9.0], [5.0, 2.0], [3.0, 3.0], [1.0, 8.0]])  # (5 rows, 2 columns)
    groups = torch.tensor([[0], [0], [1], [1], [2]])  # rows 0, 1 in group 0; 2, 3 in group 1; 4 in group 2
    rows = topk.strongest_per_group(values, groups, 2)
    # column 0: group 0 best at row 0 (5, the first of the tie with row 2 in group 1), group 1 at row 2 (5)
    # column 1: group 0 at row 1 (9), group 2 at row 4 (8); group 1's best is 3
    assert rows[:, 1].tolist() == [1, 4] and sorted(rows[:, 0].tolist()) == [0, 2]
    assert topk.strongest_per_group(values, groups, 9).shape == (3, 2)  # only 3 groups: k' = 3
    per_column = torch.tensor([[0, 1], [1, 1], [1, 0], [2, 0], [3, 2]])  # other groups in each column
    assert topk.strongest_per_group(values, per_column, 1)[0].tolist() == [0, 1]
    with pytest.raises(ValueError, match="strongest_per_group: expected values"):
        topk.strongest_per_group(values, groups[:4], 2)


def test_mining_per_source_bad_input():
    model = ZFNetSmall().eval()
    X = torch.rand(6, 1, 28, 28)
    with pytest.raises(TypeError, match="mine_topk: expected groups to be a tensor"):
        topk.mine_topk(model, X, ["conv1"], k=2, progress=False, groups=[0, 0, 1, 1, 2, 2])
    with pytest.raises(TypeError, match="mine_topk: expected groups of an integer dtype"):
        topk.mine_topk(model, X, ["conv1"], k=2, progress=False, groups=torch.zeros(6))
    with pytest.raises(ValueError, match=r"mine_topk: expected groups of shape \(6,\).*got \(5,\)"):
        topk.mine_topk(model, X, ["conv1"], k=2, progress=False, groups=torch.zeros(5, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"mine_topk: expected k \(sources per map.*\) in 1..3, got 4"):
        topk.mine_topk(model, X, ["conv1"], k=4, progress=False, groups=torch.tensor([0, 0, 1, 1, 2, 2]))


def _linearised(model_layers):
    """The same geometry with every weight 1, no ReLU, and average pooling: every pixel in the field counts."""
    out = []
    for m in model_layers:
        if isinstance(m, nn.Conv2d):
            c = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, bias=False)
            nn.init.ones_(c.weight)
            out.append(c)
        elif isinstance(m, nn.MaxPool2d):
            out.append(nn.AvgPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode))
    return nn.Sequential(*out).double()


@pytest.mark.parametrize("layer", ["conv1", "pool1", "conv2", "pool2", "conv3", "conv5", "pool5"])
def test_receptive_field_equals_gradient_support(layer):
    model = ZFNetSmall()
    path = list(model.features)[: list(dict(model.features.named_children())).index(layer) + 1]
    lin = _linearised(path)
    rf = topk.receptive_field(model, layer)
    x = torch.ones(1, 1, 28, 28, dtype=torch.float64, requires_grad=True)
    out = lin(x)
    for i, j in [(0, 0), (out.shape[2] // 2, out.shape[3] - 1), (out.shape[2] - 1, 1)]:
        x.grad = None
        lin(x)[0, 0, i, j].backward()
        rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
        cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).flatten()
        assert (int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1) == rf.box(i, j, (28, 28))


def test_zfnet_small_receptive_fields():
    model = ZFNetSmall()
    assert topk.receptive_field(model, "conv1").size == (5, 5)
    assert topk.receptive_field(model, "pool5").jump == (8, 8)


def test_crop_pads_outside_the_image():
    rf = topk.ReceptiveField((5, 5), (1, 1), (2, 2))
    img = torch.arange(1.0, 50.0).reshape(1, 7, 7)
    patch = topk.crop(img, rf, 0, 0)
    assert patch.shape == (1, 5, 5)
    assert torch.equal(patch[0, 2:, 2:], img[0, :3, :3]) and patch[0, :2].abs().sum() == 0


def test_crop_inside_shifts_the_window_into_the_image():
    img = torch.arange(1.0, 50.0).reshape(1, 7, 7)
    rf = topk.ReceptiveField((5, 5), (1, 1), (2, 2))
    assert torch.equal(topk.crop(img, rf, 0, 0, inside=True), img[:, :5, :5])  # field rows -2..2 → rows 0..4
    assert torch.equal(topk.crop(img, rf, 6, 3, inside=True), img[:, 2:7, 1:6])  # rows 4..8 → 2..6, cols 1..5
    assert torch.equal(topk.crop(img, rf, 3, 3, inside=True), topk.crop(img, rf, 3, 3))  # inside: unchanged
    huge = topk.ReceptiveField((19, 19), (2, 2), (6, 6))
    assert torch.equal(topk.crop(img, huge, 2, 1, inside=True), img)  # a field larger than the image: all of it


def test_top_projections_are_the_mined_units_projections_and_patches():
    torch.manual_seed(0)
    model = ZFNetSmall().eval()
    X = torch.rand(20, 1, 28, 28)
    top = topk.mine_topk(model, X, ["conv3"], k=4, progress=False)["conv3"]
    recon, patches = topk.top_projections(model, X, top, channel=2)
    rf = topk.receptive_field(model, "conv3")
    assert recon.shape == (4, 1, *rf.size) and patches.shape == (4, 1, *rf.size)
    # each row: the image patch under the unit, and the unit's own projection cut to the same field
    from cnnlib.deconvnet import project

    images = X[top.image_index[2]]
    whole = project(model, images, "conv3", 2, position=top.position[2])  # (4, 1, 28, 28)
    for n, (i, j) in enumerate(top.position[2].tolist()):
        torch.testing.assert_close(patches[n], topk.crop(images[n], rf, i, j))
        torch.testing.assert_close(recon[n], topk.crop(whole[n], rf, i, j))
        assert activations(model, images[n:n + 1], ["conv3"])["conv3"][0, 2, i, j] == pytest.approx(
            float(top.values[2, n]), rel=1e-5)  # the unit is the mined one
    with pytest.raises(ValueError, match="96 feature maps"):
        topk.top_projections(model, X, top, channel=96)


def test_figure2_rows_are_the_strongest_maps_projected():
    torch.manual_seed(0)
    model = ZFNetSmall().eval()
    X = torch.rand(20, 1, 28, 28)
    top = topk.mine_topk(model, X, ["conv2"], k=3, progress=False)["conv2"]
    rows = topk.figure2_rows(model, X, top, maps=2, patches_to_display=lambda p: 1 - p)
    order = top.values[:, 0].argsort(descending=True)[:2].tolist()  # the two largest top-1 activations
    assert [r[0] for r in rows] == [f"map {c}\nmax {top.values[c, 0]:.1f}" for c in order]
    for (_, recon, patches), c in zip(rows, order):
        want_recon, want_patches = topk.top_projections(model, X, top, c)
        assert torch.equal(recon, want_recon) and torch.equal(patches, 1 - want_patches)
    # only the images the rows need, found through rows_of: the same rows
    needed = sorted({int(i) for c in order for i in top.image_index[c]})
    subset = topk.figure2_rows(model, X[needed], top, maps=2, rows_of={i: n for n, i in enumerate(needed)})
    for (la, ra, pa), (lb, rb, pb) in zip(subset, topk.figure2_rows(model, X, top, maps=2)):
        assert la == lb and torch.equal(ra, rb) and torch.equal(pa, pb)
    with pytest.raises(ValueError, match="rows_of lacks mined images"):
        topk.figure2_rows(model, X[:1], top, maps=1, rows_of={})
    with pytest.raises(ValueError, match=r"maps \(layer 'conv2' has 64\) in 1..64"):
        topk.figure2_rows(model, X, top, maps=65)


def test_bad_input():
    model = ZFNetSmall().eval()
    with pytest.raises(ValueError, match=r"mine_topk: expected k .* in 1..3, got 9"):
        topk.mine_topk(model, torch.rand(3, 1, 28, 28), ["conv1"], k=9)
    with pytest.raises(ValueError, match="feature maps"):
        topk.mine_topk(model, torch.rand(3, 1, 28, 28), ["fc6"], k=2, progress=False)
    with pytest.raises(ValueError, match="unknown layer"):
        topk.mine_topk(model, torch.rand(3, 1, 28, 28), ["conv7"], k=2)


def test_shipped_topk_loads_and_a_changed_file_is_refused(tmp_path):
    import shutil

    tops, meta = topk.load_shipped_topk("efficientnet-lite0-photos")
    assert meta["done"] >= 1 and set(tops) == set(meta["layers"])
    for top in tops.values():
        assert top.values.shape[1] == 9 and (top.values[:, :-1] >= top.values[:, 1:]).all()  # sorted, top-9
    shutil.copytree(topk.TOPK_DIR, tmp_path / "topk")
    with open(tmp_path / "topk" / "efficientnet-lite0-photos.pt", "ab") as f:
        f.write(b"x")
    with pytest.raises(ValueError, match="load_shipped_topk: .* does not match"):
        topk.load_shipped_topk("efficientnet-lite0-photos", tmp_path / "topk")


def test_shipped_topk_has_nine_different_photos_per_map():

    tops, meta = topk.load_shipped_topk("efficientnet-lite0-photos")
    assert meta["one_per_photo"] is True
    pool = photos.photo_pool()
    # the photo of every mined crop, from its seed (not from anything the mining stored)
    photo_of = photos.source_ids(pool)[photos.seeded_sources(len(pool), range(meta["done"]), meta["seed"])]
    assert len(photo_of.unique()) >= 9
    for layer, top in tops.items():
        per_map = [len(photo_of[i].unique()) for i in top.image_index]
        assert per_map == [9] * len(top.values), layer


def test_shipped_vgg_topk_is_what_mining_finds_and_is_refused_when_changed(tmp_path):
    import importlib.util
    import json
    import shutil

    from cnnlib import pretrained

    tops, meta = topk.load_shipped_topk("vgg16-hed-photos")
    layers = [str(i) for i in pretrained.HED_SIDE_LAYERS]
    assert meta["layers"] == layers and meta["images"] == 318
    assert [len(tops[layer].values) for layer in layers] == [64, 128, 256, 512, 512]
    for top in tops.values():
        assert top.values.shape[1] == 9 and (top.values[:, :-1] >= top.values[:, 1:]).all()
        assert 0 <= int(top.image_index.min()) and int(top.image_index.max()) < 318
    # the strongest map of the last stage, mined again over its 9 images and 3 others, by the script's own images
    script_path = topk.TOPK_DIR.parents[1] / "scripts" / "mine_vgg_hed.py"
    spec = importlib.util.spec_from_file_location("mine_vgg_hed", script_path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    top = tops[layers[-1]]
    c = int(top.values[:, 0].argmax())
    subset = torch.cat([top.image_index[c], torch.tensor([0, 1, 2])]).unique()
    vgg = pretrained.vgg16_hed_trunk(torch.device("cpu"))
    again = topk.mine_topk(vgg, script.images()[subset], [layers[-1]], k=9, progress=False)[layers[-1]]
    assert torch.equal(subset[again.image_index[c]], top.image_index[c])
    torch.testing.assert_close(again.values[c], top.values[c], rtol=1e-3, atol=1e-3)
    # refused: a changed file, and a manifest made from other stamps
    shutil.copytree(topk.TOPK_DIR, tmp_path / "topk")
    manifest = json.loads((tmp_path / "topk" / "MANIFEST.json").read_text())
    manifest["vgg16-hed-photos.pt"]["pool"]["tuxpaint-stamps-default"]["sha256"] = "0" * 64
    (tmp_path / "topk" / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="load_shipped_topk: .* other tuxpaint-stamps-default photos"):
        topk.load_shipped_topk("vgg16-hed-photos", tmp_path / "topk")
    shutil.copy(topk.TOPK_DIR / "MANIFEST.json", tmp_path / "topk" / "MANIFEST.json")
    with open(tmp_path / "topk" / "vgg16-hed-photos.pt", "ab") as f:
        f.write(b"x")
    with pytest.raises(ValueError, match="load_shipped_topk: .* does not match"):
        topk.load_shipped_topk("vgg16-hed-photos", tmp_path / "topk")


def test_check_groups_takes_one_integer_source_per_image():
    got = topk.check_groups("f", torch.tensor([3, 3, 0], dtype=torch.int32), 3)
    assert got.dtype == torch.int64 and got.tolist() == [3, 3, 0]
    for groups, error, message in ((torch.tensor([0.0, 1.0, 2.0]), TypeError, "^f: expected groups of an integer"),
                                   (torch.tensor([True, False, True]), TypeError, "^f: expected groups of an integer"),
                                   (torch.tensor([0, 1]), ValueError, r"^f: expected groups of shape \(3,\)"),
                                   ([0, 1, 2], TypeError, "^f: expected groups to be a tensor")):
        with pytest.raises(error, match=message):
            topk.check_groups("f", groups, 3)
