"""The perceptron rule converges on separable data and never on XOR."""

import pytest
import torch

from cnnlib import data, perceptron


def test_converges_on_separable_data():
    X, y = data.make_separable(n=200, margin=0.2, seed=3)
    res = perceptron.train_perceptron(X, y, lr=1.0, max_epochs=200)
    assert res.converged
    assert res.mistakes_per_epoch[-1] == 0
    assert (perceptron.predict_labels(X, res.w, res.b) == y).all()


def test_novikoff_bound_holds():
    X, y = data.make_separable(n=200, margin=0.3, seed=5)
    res = perceptron.train_perceptron(X, y)
    # augmented inputs (x, 1): R bounds their norm; the margin γ is at least that of the generating line
    R = float(torch.cat([X, torch.ones(len(X), 1)], 1).norm(dim=1).max())
    w_star = torch.tensor([-0.5, 1.0, -0.1]) / torch.tensor([-0.5, 1.0, -0.1]).norm()
    signs = 2 * y.float() - 1
    gamma = float((signs * (torch.cat([X, torch.ones(len(X), 1)], 1) @ w_star)).min())
    assert gamma > 0
    assert sum(res.mistakes_per_epoch) <= (R / gamma) ** 2


def test_never_converges_on_xor():
    X, y = data.xor()
    res = perceptron.train_perceptron(X, y, max_epochs=100)
    assert not res.converged
    assert len(res.mistakes_per_epoch) == 100
    assert min(res.mistakes_per_epoch) >= 1


def test_one_update_by_hand():
    # w = 0, b = 0 predicts 0 for x = (1, 2) with target 1: the rule adds η·x and η
    res = perceptron.train_perceptron(torch.tensor([[1.0, 2.0]]), torch.tensor([1]), lr=0.5, max_epochs=1)
    assert res.w.tolist() == [0.5, 1.0] and res.b == 0.5
    assert isinstance(res, perceptron.PerceptronResult) and res.mistakes_per_epoch == [1] and not res.converged
    w, b = res.history[0]  # (w, b) after epoch 1
    assert w.tolist() == [0.5, 1.0] and b == 0.5


def test_bad_inputs():
    with pytest.raises(ValueError, match="targets are 0 or 1"):
        perceptron.train_perceptron(torch.randn(4, 2), torch.tensor([0, 1, 2, 1]))
    with pytest.raises(ValueError, match=r"2-D tensor \(N, D\)"):
        perceptron.predict_labels(torch.randn(4), torch.randn(4), 0.0)
    with pytest.raises(ValueError, match="predict_labels: expected w of shape"):
        perceptron.predict_labels(torch.randn(4, 3), torch.randn(2), 0.0)
    with pytest.raises(ValueError, match=r"train_perceptron: expected lr in \(0, inf\]"):
        perceptron.train_perceptron(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), lr=0)
