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
    assert torch.allclose(train.predict(model, X, batch_size=4), logits.detach())


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
