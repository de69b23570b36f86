"""fit() learns, is repeatable with a seed, and evaluate() agrees with a direct computation."""

import pytest
import torch
import torch.nn.functional as F

from cnnlib import data, mlp, train


def test_fit_learns_digits_and_repeats():
    Xtr, ytr = data.load_digits("train")
    Xte, yte = data.load_digits("test")
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = mlp.make_mlp([64, 32, 10])
        hist = train.fit(model, Xtr, ytr, num_epochs=5, lr=0.1, batch_size=64, X_test=Xte, y_test=yte,
                         device=torch.device("cpu"), progress=False)
        runs.append((hist, model))
    (h1, m1), (h2, m2) = runs
    assert h1.test_acc[-1] > 0.85
    assert h1.train_loss[-1] < h1.train_loss[0]
    assert h1.test_acc == h2.test_acc
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p, q)


def test_evaluate_matches_direct_computation():
    torch.manual_seed(0)
    model = mlp.make_mlp([4, 3])
    X, y = torch.randn(25, 4), torch.randint(0, 3, (25,))
    loss, acc = train.evaluate(model, X, y, batch_size=7)
    logits = model(X)
    assert loss == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-5)
    assert acc == pytest.approx(float((logits.argmax(1) == y).float().mean()))
    assert torch.allclose(train.predict_logits(model, X, batch_size=4), logits.detach())


def test_fit_rejects_mismatched_data():
    with pytest.raises(ValueError, match="same N"):
        train.fit(mlp.make_mlp([4, 2]), torch.randn(5, 4), torch.zeros(6, dtype=torch.long), progress=False)


def test_confusion_matrix_by_hand():
    # class 0: one right, one called 1; class 1: right; class 2: two right, one called 0
    y_true = torch.tensor([0, 0, 1, 2, 2, 2])
    y_pred = torch.tensor([0, 1, 1, 2, 0, 2])
    C = train.confusion_matrix(y_true, y_pred, 3)
    assert C.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert C.dtype == torch.int64
    assert int(C.trace()) == int((y_true == y_pred).sum())  # the diagonal counts the correct ones
    assert train.confusion_matrix(y_true, y_pred, 4)[3].tolist() == [0] * 4  # an absent class: a zero row
    with pytest.raises(ValueError, match="must lie in 0..2"):
        train.confusion_matrix(torch.tensor([0, 3]), torch.tensor([0, 1]), 3)
    with pytest.raises(ValueError, match="one shape"):
        train.confusion_matrix(torch.tensor([0, 1]), torch.tensor([0]), 3)


def test_dropout_masks_of_the_global_batch():
    """The trainer's masks: in one process exactly torch's dropout on the CPU; in two, each rank takes its rows
    of the one global mask (so the ranks' masks differ, and together they are the one-process mask)."""
    from cnnlib.models import Dropout

    x = torch.randn(6, 50)
    drop = Dropout(0.5).train()
    torch.manual_seed(3)
    want = F.dropout(x, 0.5, training=True)
    torch.manual_seed(3)
    drop.sampler = train._global_masks(6, 0, 1)
    assert torch.equal(drop(x), want)
    keeps = []
    for rank in (0, 1):
        torch.manual_seed(3)  # every process seeds its generator alike
        drop.sampler = train._global_masks(6, rank, 2)
        keeps.append(drop(x[rank::2]) != 0)
    assert not torch.equal(keeps[0], keeps[1])
    assert torch.equal(keeps[0], want[0::2] != 0) and torch.equal(keeps[1], want[1::2] != 0)
    drop.sampler = None
    assert torch.equal(drop.eval()(x), x)


def test_fit_with_dropout_is_torch_dropout_in_one_process():
    """ZFNet-small's Dropout under fit() gives the weights that torch's nn.Dropout gives: nothing changed in one
    process."""
    from cnnlib.models import Dropout, ZFNetSmall

    X, y = torch.rand(40, 1, 8, 8), torch.randint(0, 10, (40,))
    weights = []
    for plain in (False, True):
        torch.manual_seed(0)
        model = ZFNetSmall(image_size=8, dropout=0.5)
        if plain:
            for name in ("drop6", "drop7"):
                setattr(model.classifier, name, torch.nn.Dropout(0.5))
        assert any(isinstance(m, Dropout) for m in model.modules()) != plain
        train.fit(model, X, y, num_epochs=2, batch_size=16, device="cpu", progress=False)
        weights.append(model.state_dict())
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k


def test_evaluate_and_predict_restore_the_mode_even_after_an_error():
    model = mlp.make_mlp([4, 3]).train()
    with pytest.raises(ValueError, match="evaluate: the model has 3 classes, got label 7"):
        train.evaluate(model, torch.randn(5, 4), torch.tensor([0, 1, 2, 7, 0]))
    assert model.training
    model.eval()
    train.predict_logits(model, torch.randn(5, 4))
    assert not model.training


def test_augment_params_draw_fair_flips_and_every_shift():
    flip, offsets = train.augment_params(4000, 28, torch.Generator().manual_seed(0), shift=2)
    assert flip.dtype == torch.bool and offsets.shape == (2, 4000)
    assert abs(float(flip.float().mean()) - 0.5) < 0.04
    counts = torch.bincount(offsets.flatten(), minlength=5)
    assert len(counts) == 5 and (counts > 0.8 * 8000 / 5).all()  # 0 … 2·shift, uniform
    again = train.augment_params(4000, 28, torch.Generator().manual_seed(0), shift=2)
    assert torch.equal(again[0], flip) and torch.equal(again[1], offsets)


def test_train_epoch_reports_the_loss_and_accuracy_of_the_batches_it_trained_on():
    torch.manual_seed(0)
    X = torch.randn(60, 1, 4, 4)
    y = (X.flatten(1) @ torch.randn(16, 3)).argmax(1)  # labels a linear model can learn
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)  # the weights do not move: every batch sees one model
    loss, acc = train.train_epoch(model, X, y, frozen, torch.Generator().manual_seed(1), batch_size=20,
                                  dev=torch.device("cpu"), progress=False)
    with torch.no_grad():
        logits = model(X)
    assert loss == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-5)
    assert acc == pytest.approx(float((logits.argmax(1) == y).float().mean()))
    sgd = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = [train.train_epoch(model, X, y, sgd, torch.Generator().manual_seed(e), batch_size=20,
                                dev=torch.device("cpu"), progress=False)[0] for e in range(30)]
    assert losses[-1] < 0.5 * losses[0]  # it trains
