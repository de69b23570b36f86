"""Transfer learning: pooled features, the softmax probe, the per-class accuracy and the split protocol."""

import pytest
import torch
import torch.nn as nn

from cnnlib import transfer
from cnnlib.models import ZFNetSmall, activations


def test_extract_features_pools_each_map_and_keeps_vectors():
    torch.manual_seed(0)
    model = ZFNetSmall().eval()
    X = torch.rand(10, 1, 28, 28)
    feats = transfer.extract_features(model, X, ["conv2", "fc7"], batch_size=3, progress=False)
    a = activations(model, X, ["conv2", "fc7"])
    torch.testing.assert_close(feats["conv2"], a["conv2"].mean((2, 3)))  # (10, 64)
    torch.testing.assert_close(feats["fc7"], a["fc7"])  # (10, 256), kept
    doubled = transfer.extract_features(model, X / 2, ["conv1"], transform=lambda x: 2 * x, progress=False)
    plain = transfer.extract_features(model, X, ["conv1"], progress=False)
    torch.testing.assert_close(doubled["conv1"], plain["conv1"])
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
    with pytest.raises(ValueError, match=r"extract_features: expected x of shape \(N, C, H, W\)"):
        transfer.extract_features(model, X[0], ["conv1"])


def test_mean_class_accuracy_weighs_classes_equally():
    y_true = torch.tensor([0, 0, 0, 0, 1, 2, 2])
    y_pred = torch.tensor([0, 0, 0, 0, 0, 2, 1])  # class 0: 4/4, class 1: 0/1, class 2: 1/2
    assert transfer.mean_class_accuracy(y_true, y_pred) == pytest.approx((1 + 0 + 0.5) / 3)
    with pytest.raises(ValueError, match="one shape"):
        transfer.mean_class_accuracy(y_true, y_pred[:3])


def test_fit_softmax_separates_clusters_and_is_deterministic():
    torch.manual_seed(0)
    centres = torch.randn(3, 5) * 4
    y = torch.arange(3).repeat_interleave(20)
    features = centres[y] + torch.randn(60, 5)
    probe = transfer.fit_softmax(features, y)
    assert (probe(features).argmax(1) == y).all()
    again = transfer.fit_softmax(features, y)
    assert torch.equal(probe.linear.weight, again.linear.weight)
    shifted = transfer.fit_softmax(features * 10 + 3, y)  # standardised inside: same classifier
    torch.testing.assert_close(shifted(features * 10 + 3), probe(features), atol=1e-6, rtol=1e-6)
    strong = transfer.fit_softmax(features, y, weight_decay=100.0)
    assert strong.linear.weight.norm() < 0.2 * probe.linear.weight.norm()  # the penalty shrinks W
    with pytest.raises(ValueError, match=r"features \(N, K\) and labels \(N,\)"):
        transfer.fit_softmax(features, y[:10])


def test_split_protocol_and_accuracy_vs_train_size():
    torch.manual_seed(1)
    y = torch.arange(4).repeat_interleave(8)  # 4 classes × 8 images
    features = torch.randn(4, 6)[y] * 3 + torch.randn(32, 6)
    seen = []

    def remember(train_idx, test_idx):
        seen.append((train_idx, test_idx))
        assert len(set(train_idx.tolist()) & set(test_idx.tolist())) == 0
        return y[test_idx]  # a perfect classifier

    table = transfer.split_protocol(y, [1, 3], remember, splits=2)
    assert table == {1: (1.0, 0.0), 3: (1.0, 0.0)}
    assert [len(t) for t, _ in seen] == [4, 4, 12, 12] and not torch.equal(seen[0][0], seen[1][0])
    result = transfer.accuracy_vs_train_size(features, y, [1, 5], splits=3)
    assert set(result) == {1, 5} and result[5][0] >= result[1][0] - 0.05 and result[5][0] > 0.9
    assert result == transfer.accuracy_vs_train_size(features, y, [1, 5], splits=3)  # seeded
    random_features = transfer.accuracy_vs_train_size(torch.randn(32, 6), y, [5], splits=3)
    assert random_features[5][0] < 0.7  # chance is 0.25: no information, no accuracy
    with pytest.raises(ValueError, match="need more than n_train=8"):
        transfer.split_protocol(y, [8], remember)


def test_softmax_probe_is_a_module_on_standardised_features():
    mean = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    std = torch.tensor([2.0, 0.5, 4.0], dtype=torch.float64)
    probe = transfer.SoftmaxProbe(mean, std, 2)
    W = torch.tensor([[1.0, 2.0, -1.0], [0.5, 0.0, 3.0]], dtype=torch.float64)
    b = torch.tensor([0.25, -1.0], dtype=torch.float64)
    with torch.no_grad():
        probe.linear.weight.copy_(W)
        probe.linear.bias.copy_(b)
    f = torch.tensor([[3.0, -1.0, 4.5], [1.0, -2.0, 0.5]])  # float32 in, the probe's float64 out
    logits = probe(f)
    assert logits.dtype == torch.float64
    by_hand = torch.stack([W @ ((row.double() - mean) / std) + b for row in f])  # W (f − μ) / σ + b
    torch.testing.assert_close(logits, by_hand)
    torch.testing.assert_close(logits[1], b)  # the mean feature vector gives the bias alone
    # μ and σ are part of the module: saved with it and moved with it
    assert set(probe.state_dict()) == {"mean", "std", "linear.weight", "linear.bias"}
    copy = transfer.SoftmaxProbe(torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64), 2)
    copy.load_state_dict(probe.state_dict())
    torch.testing.assert_close(copy(f), logits)


def test_split_protocol_caps_the_test_images_per_class():
    y = torch.arange(3).repeat_interleave(torch.tensor([20, 6, 4]))
    seen = []

    def remember(train_idx, test_idx):
        seen.append(test_idx)
        return y[test_idx]

    transfer.split_protocol(y, [2], remember, splits=2, max_test_per_class=3)
    for test_idx in seen:
        assert torch.bincount(y[test_idx]).tolist() == [3, 3, 2]  # capped at 3; the class of 4 has only 2 left


def _two_layers():
    """3 classes × 12 images: layer "noise" carries no information, layer "signal" separates the classes."""
    torch.manual_seed(3)
    y = torch.arange(3).repeat_interleave(12)
    return y, {"noise": torch.randn(36, 8), "signal": torch.randn(3, 8)[y] * 3 + torch.randn(36, 8)}


def test_cross_validate_picks_the_informative_layer_and_breaks_ties_in_order():
    y, features = _two_layers()
    layer, lam, scores = transfer.cross_validate(features, y, [1e-2, 1.0], folds=4)
    assert layer == "signal" and scores[(layer, lam)] == max(scores.values())
    assert set(scores) == {(k, w) for k in features for w in (1e-2, 1.0)}
    assert min(scores[("signal", w)] for w in (1e-2, 1.0)) > 0.9 > 0.6 > max(scores[("noise", w)] for w in (1e-2, 1.0))
    same = transfer.cross_validate({"a": features["signal"], "b": features["signal"]}, y, [1.0, 1e-2], folds=4)
    assert same[0] == "a"
    with pytest.raises(ValueError, match="at least 2 training images"):
        transfer.cross_validate({"a": features["signal"][:3]}, torch.arange(3), [1.0])
    with pytest.raises(TypeError, match="cross_validate: expected features as a non-empty"):
        transfer.cross_validate(features["signal"], y, [1.0])


def test_selected_accuracy_chooses_without_looking_at_the_test_images():
    y, features = _two_layers()
    result = transfer.selected_accuracy(features, y, [4], weight_decays=[1e-2, 1.0], folds=4, splits=2)
    assert [layer for layer, _ in result.choices[4]] == ["signal", "signal"]
    # Replace every feature of the test images of split 0 by garbage: its choice cannot change. (One split
    # only: the test images of split 0 are training images of split 1.)
    garbage = {k: f.clone() for k, f in features.items()}
    _, test_idx = transfer.split_per_class(y, 4, seed=0)
    garbage["noise"][test_idx] = 100.0 * torch.eye(8)[y[test_idx]]  # a "layer" perfect on the test images
    garbage["signal"][test_idx] = torch.randn(len(test_idx), 8)
    cheated = transfer.selected_accuracy(garbage, y, [4], weight_decays=[1e-2, 1.0], folds=4, splits=1)
    assert cheated.choices[4] == result.choices[4][:1]
    lam = result.choices[4][0][1]
    expected = transfer.accuracy_vs_train_size(features["signal"], y, [4], splits=1, weight_decay=lam)
    first = transfer.selected_accuracy(features, y, [4], weight_decays=[1e-2, 1.0], folds=4, splits=1)
    assert first.table[4] == pytest.approx(expected[4])  # the chosen probe, refitted on all training images
    assert isinstance(first, transfer.SelectedAccuracy) and list(first.choices) == list(first.table) == [4]
    with pytest.raises(ValueError, match="at least 2 training images per class"):
        transfer.selected_accuracy(features, y, [1])


def _halves(n: int, seed: int):
    """Images (n, 1, 12, 12): class 0 bright in the top half, class 1 in the bottom half, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    X = torch.randn(n, 1, 12, 12, generator=g) * 0.3
    X[y == 0, :, :6] += 1.0
    X[y == 1, :, 6:] += 1.0
    return X, y


def _tiny_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d((2, 1)),
                         nn.Flatten(), nn.Linear(8, 3))


def test_fine_tune_trains_every_layer_learns_the_task_and_is_seeded():
    X, y = _halves(32, 0)
    X_test, y_test = _halves(40, 1)
    model = _tiny_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = transfer.fine_tune(model, X, y, epochs=15, lr=0.05, batch_size=8, shift=1, seed=3)
    assert out is model and not model.training
    changed = [k for k, v in model.state_dict().items()
               if k != "1.num_batches_tracked" and not torch.equal(v, before[k])]
    assert set(changed) == set(before) - {"1.num_batches_tracked"}  # every weight, and BatchNorm's running statistics
    with torch.no_grad():
        assert transfer.mean_class_accuracy(y_test, model(X_test).argmax(1)) == 1.0
    again = transfer.fine_tune(_tiny_cnn(), X, y, epochs=15, lr=0.05, batch_size=8, shift=1, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))


def test_fine_tune_from_a_solution_stays_better_than_from_scratch_with_few_steps():
    X, y = _halves(8, 0)
    X_test, y_test = _halves(200, 1)
    solved = transfer.fine_tune(_tiny_cnn(), *_halves(64, 2), epochs=20, lr=0.05, batch_size=8, shift=0)
    scores = {}
    for name, model in (("pretrained", solved), ("scratch", _tiny_cnn(1))):
        transfer.fine_tune(model, X, y, epochs=1, lr=0.001, batch_size=8, shift=0)
        with torch.no_grad():
            scores[name] = transfer.mean_class_accuracy(y_test, model(X_test).argmax(1))
    assert scores["pretrained"] == 1.0 and scores["scratch"] < 0.9


@pytest.mark.parametrize("call,error,pattern", [
    (lambda m: transfer.fine_tune(m, torch.rand(4, 1, 12, 12), torch.tensor([0, 1, 2, 3])), ValueError,
     r"fine_tune: .*K > 3"),
    (lambda m: transfer.fine_tune(m, torch.rand(4, 1, 12, 12), torch.rand(4)), ValueError, "integer labels"),
    (lambda m: transfer.fine_tune(m, torch.rand(4, 12, 12), torch.zeros(4, dtype=torch.long)), ValueError,
     r"fine_tune: .*\(N, C, H, W\)"),
    (lambda m: transfer.fine_tune(m, torch.rand(4, 1, 12, 12), torch.zeros(4, dtype=torch.long), epochs=0),
     ValueError, "epochs"),
    (lambda m: transfer.fine_tune("net", torch.rand(4, 1, 12, 12), torch.zeros(4, dtype=torch.long)), TypeError,
     "fine_tune"),
])
def test_fine_tune_bad_input(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(_tiny_cnn())


def test_fine_tune_can_keep_the_batchnorm_statistics():
    X, y = _halves(16, 0)
    model = _tiny_cnn()
    bn = model[1]
    bn.running_mean.fill_(0.5)
    mean, var, weight = bn.running_mean.clone(), bn.running_var.clone(), bn.weight.detach().clone()
    transfer.fine_tune(model, X, y, epochs=2, lr=0.05, batch_size=8, shift=0, freeze_batchnorm=True)
    assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
    assert not torch.equal(bn.weight.detach(), weight)  # its scale still trains
    transfer.fine_tune(model, X, y, epochs=1, lr=0.05, batch_size=8, shift=0)
    assert not torch.equal(bn.running_mean, mean)


def test_the_shipped_finetune_table_is_checked_and_summarised(tmp_path):
    table, record = transfer.shipped_finetune_table()
    assert set(table) == {"fine-tuned", "scratch", "frozen"}
    assert list(table["scratch"]) == list(table["frozen"]) == record["config"]["n_per_class"]
    for row in ("fine-tuned", "scratch"):
        by_n = table[row]
        for n, (mean, std) in by_n.items():
            accs = torch.tensor([record["runs"][f"{row}/{n}/{s}"]["accuracy"] for s in range(5)], dtype=torch.float64)
            assert mean == pytest.approx(float(accs.mean())) and std == pytest.approx(float(accs.std(unbiased=False)))
            assert 0 <= mean <= 1
    import shutil

    from cnnlib.snapshots import DATA_DIR

    shutil.copytree(DATA_DIR / "transfer", tmp_path / "transfer")
    changed = tmp_path / "transfer" / "finetune.json"
    changed.write_text(changed.read_text().replace('"accuracy": 0.', '"accuracy": 0.9', 1))
    with pytest.raises(ValueError, match="shipped_finetune_table: .* does not match"):
        transfer.shipped_finetune_table(tmp_path / "transfer")


def test_recalibrate_batchnorm_sets_the_statistics_of_the_images():
    X, _ = _halves(20, 0)
    model = _tiny_cnn()
    model[1].momentum = 0.01  # a slow running average, as in EfficientNet-Lite0
    transfer.recalibrate_batchnorm(model, X)
    conv = model[0](X)  # what the BatchNorm sees, (20, 4, 12, 12)
    assert torch.allclose(model[1].running_mean, conv.mean((0, 2, 3)), atol=1e-6)
    assert torch.allclose(model[1].running_var, conv.transpose(0, 1).flatten(1).var(1), atol=1e-6)
    assert model[1].momentum == 0.01 and not model.training


def test_selected_accuracy_keeps_every_split_and_one_split_is_that_split_of_the_full_call():
    torch.manual_seed(5)  # a weak signal: the splits score differently and choose differently
    y = torch.arange(3).repeat_interleave(12)
    features = {"a": torch.randn(3, 8)[y] * 0.6 + torch.randn(36, 8), "b": torch.randn(36, 8)}
    full = transfer.selected_accuracy(features, y, [3, 4], weight_decays=[1e-2, 1.0], folds=3, splits=3)
    for n in (3, 4):
        accs = torch.tensor(full.accuracies[n], dtype=torch.float64)
        assert len(set(full.accuracies[n])) == 3 and len(set(full.choices[n])) > 1
        assert len(accs) == 3 and full.table[n] == pytest.approx((float(accs.mean()), float(accs.std(unbiased=False))))
        for s in range(3):
            alone = transfer.selected_accuracy(features, y, [n], weight_decays=[1e-2, 1.0], folds=3, splits=1, seed=s)
            assert alone.choices[n] == full.choices[n][s:s + 1] and alone.accuracies[n] == full.accuracies[n][s:s + 1]


def test_the_shipped_features_and_tables_are_checked(tmp_path):
    import json
    import shutil

    from cnnlib import data, photos
    from cnnlib.snapshots import DATA_DIR

    features, record = transfer.shipped_features()
    _, y, classes = photos.load_stamps(size=32, min_per_class=11)  # the labels only: any size
    assert torch.equal(record["y"], y) and record["classes"] == classes
    assert features["pretrained"]["_blocks.15"].shape == (len(y), 320) == features["untrained"]["_blocks.15"].shape
    assert features["pretrained"]["_avg_pooling"].shape == (len(y), 1280)
    assert features["pretrained"]["_blocks.0"].dtype == torch.float32
    tables, selected = transfer.shipped_selected()
    assert set(tables) == {"pretrained", "untrained", "fashion"} and selected["classes"] == classes
    for row in tables.values():
        for n, (mean, std) in row.table.items():
            accs = torch.tensor(row.accuracies[n], dtype=torch.float64)
            assert len(accs) == len(row.choices[n]) == selected["config"]["splits"]
            assert (mean, std) == pytest.approx((float(accs.mean()), float(accs.std(unbiased=False))))
    # the shipped pretrained choice of split 0 with 5 per class, refitted on the shipped features
    layer, lam = tables["pretrained"].choices[5][0]
    cfg = selected["config"]
    train_idx, test_idx = data.split_per_class(y, 5, seed=0, n_test=cfg["max_test"])
    probe = transfer.fit_softmax(features["pretrained"][layer][train_idx], y[train_idx], len(classes), lam)
    with torch.no_grad():
        acc = transfer.mean_class_accuracy(y[test_idx], probe(features["pretrained"][layer][test_idx]).argmax(1))
    assert acc == pytest.approx(tables["pretrained"].accuracies[5][0], abs=0.02)
    shutil.copytree(DATA_DIR / "transfer", tmp_path / "transfer")
    shutil.copy(DATA_DIR / "MANIFEST.json", tmp_path / "MANIFEST.json")  # the snapshots the tables were made from
    changed = tmp_path / "transfer" / "selected.json"
    changed.write_text(changed.read_text().replace('"_blocks.14"', '"_blocks.10"', 1))
    with pytest.raises(ValueError, match="shipped_selected: .* does not match"):
        transfer.shipped_selected(tmp_path / "transfer")
    changed = tmp_path / "transfer" / "features.pt"
    whole = torch.load(changed, weights_only=True)
    whole["features"]["untrained"]["_blocks.15"][0, 0] += 1e-3
    torch.save(whole, changed)
    with pytest.raises(ValueError, match="shipped_features: .* does not match"):
        transfer.shipped_features(tmp_path / "transfer")
    manifest = tmp_path / "transfer" / "MANIFEST.json"
    entries = json.loads(manifest.read_text())
    entries["selected.json"]["pool"]["tuxpaint-stamps-default"]["sha256"] = "0" * 64  # made from other stamps
    shutil.copy(DATA_DIR / "transfer" / "selected.json", tmp_path / "transfer" / "selected.json")
    manifest.write_text(json.dumps(entries))
    with pytest.raises(ValueError, match="shipped_selected: .* other tuxpaint-stamps-default photos"):
        transfer.shipped_selected(tmp_path / "transfer")
    entries = json.loads((DATA_DIR / "transfer" / "MANIFEST.json").read_text())
    (rel,) = entries["selected.json"]["snapshots"]  # the "fashion" row's ZFNet-small
    entries["selected.json"]["snapshots"][rel] = "0" * 64
    manifest.write_text(json.dumps(entries))
    with pytest.raises(ValueError, match=f"shipped_selected: .* other snapshots than those here \\({rel}\\)"):
        transfer.shipped_selected(tmp_path / "transfer")
