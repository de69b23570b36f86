"""Feature evolution: linear CKA in closed-form cases, layer similarity, and the strongest projections."""

import pytest
import torch

from cnnlib import evolution, plotting
from cnnlib.deconvnet import project
from cnnlib.models import ZFNetSmall, activations
from cnnlib.topk import crop, receptive_field


def test_linear_cka_of_one_column_is_the_squared_correlation():
    x = torch.tensor([[1.0], [2.0], [3.0], [5.0]])
    y = torch.tensor([[1.0], [4.0], [9.0], [20.0]])
    r = torch.corrcoef(torch.stack([x[:, 0], y[:, 0]]))[0, 1].item()
    assert evolution.linear_cka(x, y) == pytest.approx(r ** 2)


def test_linear_cka_ignores_rotation_scale_shift_and_unit_order():
    torch.manual_seed(0)
    X = torch.randn(200, 6, dtype=torch.float64)
    Q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    assert evolution.linear_cka(X, X) == pytest.approx(1.0)
    assert evolution.linear_cka(X, 3.0 * X @ Q + 7.0) == pytest.approx(1.0)
    assert evolution.linear_cka(X, X[:, torch.randperm(6)]) == pytest.approx(1.0)
    assert evolution.linear_cka(X, torch.randn(200, 6, dtype=torch.float64)) < 0.15  # unrelated: near 0
    assert evolution.linear_cka(X, X[:, :3]) < 1.0  # half the information


def test_linear_cka_gram_and_feature_forms_agree():
    torch.manual_seed(1)
    X, Y = torch.randn(40, 3, dtype=torch.float64), torch.randn(40, 30, dtype=torch.float64)
    Y[:, :3] += 2 * X  # related: CKA well above 0
    wide = evolution.linear_cka(X, Y)  # 40 images >= 33 units: the feature form
    narrow = evolution.linear_cka(X[:20], Y[:20])  # 20 < 33 → the Gram form
    Xc, Yc = X[:20] - X[:20].mean(0), Y[:20] - Y[:20].mean(0)
    by_features = (Yc.T @ Xc).norm() ** 2 / ((Xc.T @ Xc).norm() * (Yc.T @ Yc).norm())
    assert narrow == pytest.approx(by_features.item()) and 0.3 < wide < 1


def test_linear_cka_checks_its_input():
    with pytest.raises(ValueError, match="same n >= 2 inputs"):
        evolution.linear_cka(torch.randn(5, 2), torch.randn(4, 2))
    with pytest.raises(ValueError, match="constant over the inputs"):
        evolution.linear_cka(torch.ones(5, 2), torch.randn(5, 2))


def _snapshots():
    models = {}
    for epoch, seed in ((1, 0), (2, 1)):
        torch.manual_seed(seed)
        models[epoch] = ZFNetSmall().eval()
    return models


def test_layer_similarity_is_one_against_itself_and_below_one_between_different_nets():
    models = _snapshots()
    X = torch.rand(64, 1, 28, 28)
    sim = evolution.layer_similarity(models, X, ["conv1", "conv5"])
    assert sim["conv1"][2] == pytest.approx(1.0) and sim["conv5"][2] == pytest.approx(1.0)
    assert sim["conv5"][1] < 0.99
    a = activations(models[1], X, ["conv5"])["conv5"]
    b = activations(models[2], X, ["conv5"])["conv5"]
    assert sim["conv5"][1] == pytest.approx(evolution.linear_cka(a, b))
    with pytest.raises(ValueError, match="reference epoch 5"):
        evolution.layer_similarity(models, X, ["conv1"], reference=5)


def test_strongest_projections_project_each_maps_strongest_unit_over_the_data():
    models = _snapshots()
    torch.manual_seed(3)
    X = torch.rand(30, 1, 28, 28)
    evos = evolution.strongest_projections(models, X, {"conv3": [0, 5], "conv1": [2]}, batch_size=7, progress=False)
    evo = evos["conv3"]
    assert evos["conv1"].projections.shape[:2] == (2, 1) and evo.top_image.shape == (2, 96)
    R = receptive_field(models[1], "conv3")
    assert evo.epochs == [1, 2] and evo.projections.shape == (2, 2, 1, *R.size) == evo.patches.shape
    for e, epoch in enumerate(evo.epochs):
        a = activations(models[epoch], X, ["conv3"])["conv3"]  # (30, K, h, w)
        for m, c in enumerate([0, 5]):
            best = a[:, c].flatten(1).amax(1)  # (30,)
            n = int(best.argmax())
            assert evo.values[e, m].item() == pytest.approx(best.max().item())
            assert int(evo.image_index[e, m]) == n == int(evo.top_image[e, c])
            i, j = divmod(int(a[n, c].flatten().argmax()), a.shape[-1])
            want = crop(project(models[epoch], X[n: n + 1], "conv3", c, position=(i, j))[0], R, i, j)
            torch.testing.assert_close(evo.projections[e, m], want)
            torch.testing.assert_close(evo.patches[e, m], crop(X[n], R, i, j))
    fig = plotting.plot_evolution(evo, title="conv3")
    assert len(fig.axes) == 4 and fig.axes[1].get_title() == "epoch 2" and fig.axes[0].get_ylabel() == "map 0"
    with pytest.raises(ValueError, match=r"strongest_projections: expected feature maps of 'conv3' \(96 maps\) .* 96"):
        evolution.strongest_projections(models, X, {"conv3": [96]}, progress=False)


def test_follow_projects_other_maps_without_mining_again():
    models = _snapshots()
    torch.manual_seed(4)
    X = torch.rand(20, 1, 28, 28)
    evo = evolution.strongest_projections(models, X, {"conv5": [1]}, progress=False)["conv5"]
    other = evolution.follow(models, X, evo, [7, 1])
    direct = evolution.strongest_projections(models, X, {"conv5": [7, 1]}, progress=False)["conv5"]
    torch.testing.assert_close(other.projections, direct.projections)
    torch.testing.assert_close(other.projections[:, 1], evo.projections[:, 0])
    assert torch.equal(other.values, direct.values) and other.channels == [7, 1]
    fig = plotting.plot_evolution(other, patches=True)
    assert len(fig.axes) == 2 * 2 * 2 and fig.axes[2].get_ylabel() == "patch"  # 2 maps × (projection, patch) × 2 epochs
    with pytest.raises(ValueError, match=r"follow: expected feature maps of 'conv5' \(64 maps\) in 0\.\.63, got 64"):
        evolution.follow(models, X, evo, [64])


def test_initial_model_rebuilds_epoch_0_of_the_shipped_run():
    from cnnlib import pretrained

    name = "zfnet-small-fashion"
    snap = pretrained.load_snapshot(name, pretrained.available()[name][0])
    state = torch.get_rng_state()
    start = evolution.initial_model(name, device="cpu")
    assert torch.equal(torch.get_rng_state(), state)  # the global random state is left alone
    torch.manual_seed(snap["config"]["seed"])
    expected = ZFNetSmall(**snap["model_kwargs"])
    for (n, a), (_, b) in zip(start.state_dict().items(), expected.state_dict().items()):
        torch.testing.assert_close(a, b.half().float() if b.is_floating_point() else b, rtol=0, atol=0, msg=n)
    assert not start.training
    other = evolution.initial_model(name, seed=snap["config"]["seed"] + 1, device="cpu")
    epoch1 = pretrained.load(name, epoch=pretrained.available()[name][0], device="cpu")

    def distance(a, b):
        wa, wb = (torch.cat([p.flatten() for p in m.features.parameters()]) for m in (a, b))
        return ((wa - wb).norm() / wb.norm()).item()

    # one epoch of SGD moves the weights a little from the run's start; an independent start is far away
    assert distance(epoch1, start) < 0.5 < 1.2 < distance(epoch1, other)
    with pytest.raises(ValueError, match="initial_model: unknown series"):
        evolution.initial_model("no-such-net")
    with pytest.raises(ValueError, match="initial_model: expected an integer seed"):
        evolution.initial_model(name, seed=1.5)


def test_layer_similarity_reuses_the_reference_gram_and_gives_linear_cka_exactly():
    models = {**_snapshots(), 3: _snapshots()[2]}  # epochs 2 and 3: one network; epoch 1 another
    X = torch.rand(40, 1, 28, 28)
    layers = ["conv1", "conv5", "fc7"]  # conv1 and conv5: the Gram form (40 < 2 · units); fc7 the feature form
    sim = evolution.layer_similarity(models, X, layers)
    acts = {e: activations(m, X, layers) for e, m in models.items()}
    for layer in layers:
        assert sim[layer] == {e: evolution.linear_cka(acts[e][layer], acts[3][layer]) for e in (1, 2, 3)}
    assert sim["conv5"][2] == pytest.approx(1.0) and sim["conv5"][1] < 0.99


def test_the_shipped_mining_is_the_mining_of_the_snapshots_and_is_checked(tmp_path):
    import shutil

    from cnnlib import data, pretrained
    from cnnlib.snapshots import DATA_DIR
    from cnnlib.topk import mine_topk, project_units

    X = data.load_fashion_mnist("train")[0][:5000]
    mined = evolution.shipped_mining(X)
    epochs = pretrained.available()["zfnet-small-fashion"]
    assert list(mined) == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert mined["conv4"].top_value.shape == (len(epochs), 96) and mined["conv4"].epochs == epochs
    assert mined["conv2"].top_position.shape == (len(epochs), 64, 2) and len(mined["conv2"].channels) == 4
    # the four maps shown are the strongest at the last epoch, and their projections are the deconvnet's
    conv5 = mined["conv5"]
    assert set(conv5.channels) == set(conv5.top_value[-1].topk(4).indices.tolist())
    assert conv5.projections.shape == conv5.patches.shape == (len(epochs), 4, 1, 43, 43)
    c = conv5.channels[1]
    projection, patch = project_units(pretrained.load("zfnet-small-fashion", epoch=2, device="cpu"), X, "conv5", c,
                                      conv5.top_image[1, c: c + 1], conv5.top_position[1, c: c + 1])
    torch.testing.assert_close(projection[0], conv5.projections[1, 1], rtol=1e-4, atol=1e-4 * projection.abs().max())
    assert torch.equal(patch[0], conv5.patches[1, 1])
    # epoch 1 mined again over the first 500 images: never above the shipped maximum over 5,000, and equal to it
    # for the maps whose shipped winner is among them
    again = mine_topk(pretrained.load("zfnet-small-fashion", epoch=1, device="cpu"), X[:500], ["conv3"], k=1,
                      progress=False)["conv3"].values[:, 0]
    shipped, winner = mined["conv3"].top_value[0], mined["conv3"].top_image[0]
    assert (again <= shipped + 1e-4 * shipped.abs().max()).all()
    inside = winner < 500
    assert inside.sum() >= 3 and torch.allclose(again[inside], shipped[inside], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="shipped_mining: .* other images"):
        evolution.shipped_mining(X[:4999])
    shutil.copytree(DATA_DIR / "evolution", tmp_path / "evolution")
    shutil.copy(DATA_DIR / "MANIFEST.json", tmp_path / "MANIFEST.json")
    assert evolution.shipped_mining(folder=tmp_path / "evolution")["conv1"].top_value.shape == (len(epochs), 32)
    record = torch.load(tmp_path / "evolution" / "mined.pt", weights_only=True)
    record["top_value"]["conv1"][0, 0] += 1
    torch.save(record, tmp_path / "evolution" / "mined.pt")
    with pytest.raises(ValueError, match="shipped_mining: .* does not match"):
        evolution.shipped_mining(folder=tmp_path / "evolution")
    shutil.copy(DATA_DIR / "evolution" / "mined.pt", tmp_path / "evolution" / "mined.pt")
    manifest = tmp_path / "MANIFEST.json"
    text = manifest.read_text()
    sha = text.split('"sha256": "')[1][:64]
    manifest.write_text(text.replace(sha, "0" * 64, 1))  # as if a snapshot had been trained again
    with pytest.raises(ValueError, match="shipped_mining: .* other snapshots"):
        evolution.shipped_mining(folder=tmp_path / "evolution")


def test_images_digest_tells_the_same_images_from_others():
    X = torch.rand(4, 1, 28, 28)
    d = evolution.images_digest(X)
    assert len(d) == 64 and evolution.images_digest(X.clone()) == d
    assert evolution.images_digest(X.transpose(2, 3).contiguous().transpose(2, 3)) == d  # the values, not the layout
    Y = X.clone()
    Y[3, 0, 27, 27] += 1e-6  # one pixel, slightly
    assert evolution.images_digest(Y) != d and evolution.images_digest(X[:3]) != d
