"""Hand-written backpropagation equals autograd; an MLP learns XOR; the nn version trains."""

import pytest
import torch

from cnnlib import data, mlp


@pytest.mark.parametrize("activation", mlp.ACTIVATIONS)
@pytest.mark.parametrize("sizes", [[2, 3, 2], [5, 7, 4, 3], [4, 3]])
def test_backward_equals_autograd(activation, sizes):
    params = mlp.init_params(sizes, seed=1)
    X = torch.randn(6, sizes[0], dtype=torch.float64)
    y = torch.randint(0, sizes[-1], (6,))
    probs, cache = mlp.forward(params, X, activation)
    grads = mlp.backward(params, cache, y, activation)
    leaves = [{k: v.clone().requires_grad_(True) for k, v in layer.items()} for layer in params]
    p_auto, _ = mlp.forward(leaves, X, activation)
    mlp.cross_entropy(p_auto, y).backward()
    for ours, ref in zip(grads, leaves):
        torch.testing.assert_close(ours["W"], ref["W"].grad, atol=1e-10, rtol=1e-8)
        torch.testing.assert_close(ours["b"], ref["b"].grad, atol=1e-10, rtol=1e-8)


def test_output_is_a_probability_vector():
    params = mlp.init_params([3, 5, 4])
    probs, _ = mlp.forward(params, torch.randn(7, 3, dtype=torch.float64))
    assert probs.shape == (7, 4)
    torch.testing.assert_close(probs.sum(1), torch.ones(7, dtype=torch.float64))


def test_mlp_solves_xor():
    X, y = data.xor()
    params = mlp.init_params([2, 4, 2], seed=0)
    losses = mlp.fit_scratch(params, X, y, lr=0.5, num_epochs=1500)
    probs, _ = mlp.forward(params, X)
    assert (probs.argmax(1) == y).all()
    assert losses[-1] < 0.1 < losses[0]


def test_make_mlp_layers():
    net = mlp.make_mlp([784, 100, 10])
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert sum(p.numel() for p in net.parameters()) == 784 * 100 + 100 + 100 * 10 + 10


def test_bad_inputs():
    with pytest.raises(ValueError, match="activation"):
        mlp.make_mlp([2, 2], activation="softsign")
    with pytest.raises(ValueError, match="sizes"):
        mlp.init_params([3])
    with pytest.raises(ValueError, match=r"forward: expected X of shape \(N, 2\)"):
        mlp.forward(mlp.init_params([2, 2]), torch.randn(3, 5))
