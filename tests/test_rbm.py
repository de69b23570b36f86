"""The RBM against enumeration of all its states, CD-k against the exact gradient, the unrolled autoencoder."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from cnnlib import data
from cnnlib import rbm as R
from cnnlib.autoencoder import fit_autoencoder


def _flat(grad):
    return torch.cat([grad["W"].flatten(), grad["b"], grad["c"]])


def _tiny(std=4.0, seed=1):
    """4 visible, 3 hidden units: 16 × 8 joint states, few enough to enumerate."""
    return R.RBM(4, 3, weight_std=std, seed=seed)


DATA = R.all_states(4)[[3, 5, 10, 12, 15]]  # five binary data vectors (5, 4)


def test_all_states():
    s = R.all_states(3)
    assert s.shape == (8, 3) and s.unique(dim=0).shape == (8, 3)
    assert s[5].tolist() == [1.0, 0.0, 1.0]  # binary counting order


def test_conditionals_by_hand():
    rbm = R.RBM(2, 1)
    with torch.no_grad():
        rbm.W.copy_(torch.tensor([[1.0], [-2.0]]))
        rbm.b.copy_(torch.tensor([0.25, -1.0]))
        rbm.c.copy_(torch.tensor([0.5]))
    sig = lambda a: 1 / (1 + math.exp(-a))  # noqa: E731
    v = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    # p(h=1 | v) = σ(c + v·w): σ(0.5 + 1 − 2), σ(0.5 + 1), σ(0.5)
    assert torch.allclose(rbm.hidden_probs(v).squeeze(1), torch.tensor([sig(-0.5), sig(1.5), sig(0.5)]))
    # p(v=1 | h=1) = σ(b + w): σ(1.25), σ(−3); p(v=1 | h=0) = σ(b)
    assert torch.allclose(rbm.visible_probs(torch.tensor([[1.0], [0.0]])),
                          torch.tensor([[sig(1.25), sig(-3.0)], [sig(0.25), sig(-1.0)]]))
    # E(v=(1,1), h=1) = −(1 − 2) − (0.25 − 1) − 0.5 = 1.25
    assert torch.allclose(rbm.energy(v[:1], torch.tensor([[1.0]])), torch.tensor([1.25]))


def test_free_energy_equals_enumeration():
    rbm = _tiny()
    hs = R.all_states(3)
    v = torch.cat([R.all_states(4), torch.rand(5, 4)])  # binary states and probabilities
    by_sum = torch.stack([-torch.logsumexp(-rbm.energy(vi.expand(len(hs), 4), hs), 0) for vi in v])
    assert torch.allclose(rbm.free_energy(v), by_sum, atol=1e-5)


def test_exact_likelihood_and_gradient_against_brute_force_autograd():
    rbm = _tiny(std=1.0)
    with torch.no_grad():
        rbm.b.copy_(torch.randn(4))
        rbm.c.copy_(torch.randn(3))
    vs, hs = R.all_states(4), R.all_states(3)
    pairs = torch.tensor(list(itertools.product(range(16), range(8))))
    log_z = torch.logsumexp(-rbm.energy(vs[pairs[:, 0]], hs[pairs[:, 1]]), 0)  # Σ over all 128 (v, h)
    assert torch.allclose(R.log_partition(rbm), log_z, atol=1e-5)
    assert torch.allclose(R.log_likelihood(rbm, vs).exp().sum(), torch.tensor(1.0), atol=1e-5)
    mean_ll = (-rbm.free_energy(DATA) - log_z).mean()
    grads = torch.autograd.grad(mean_ll, [rbm.W, rbm.b, rbm.c])
    exact = R.exact_gradient(rbm, DATA)
    for g, name in zip(grads, "Wbc"):
        assert torch.allclose(exact[name], g, atol=1e-5), name


def test_cd_k_approaches_exact_gradient():
    rbm = _tiny()  # strong weights: the Gibbs chain mixes slowly, so CD-1 is far off
    exact = _flat(R.exact_gradient(rbm, DATA))
    v = DATA.repeat(4000, 1)  # 20,000 chains
    err, cos = {}, {}
    for k in (1, 5, 50):
        sampled = _flat(R.cd_gradient(rbm, v, k=k, generator=torch.Generator().manual_seed(k)))
        expected = _flat(R.cd_expected_gradient(rbm, DATA, k=k))
        # the sampler's mean is the CD-k expectation computed by enumeration (up to Monte-Carlo noise)
        assert float((sampled - expected).norm() / exact.norm()) < 0.05, k
        err[k] = float((sampled - exact).norm() / exact.norm())
        cos[k] = float(F.cosine_similarity(sampled, exact, 0))
    assert err[1] > err[5] > err[50], err
    assert err[1] > 0.4 and err[50] < 0.05 and cos[50] > 0.999, (err, cos)
    # without noise: the bias of CD-k decreases with k and vanishes
    bias = [float((_flat(R.cd_expected_gradient(rbm, DATA, k=k)) - exact).norm() / exact.norm()) for k in (1, 5, 50)]
    assert bias[0] > bias[1] > bias[2] and bias[2] < 1e-3, bias


def test_gibbs_chain_samples_the_model():
    rbm = _tiny(std=1.0)
    chain = R.gibbs_chain(rbm, torch.rand(4000, 4), num_steps=30, every=10, generator=torch.Generator().manual_seed(0))
    assert chain.shape == (4, 4000, 4)
    # the mean of p(v | h) over many chains after 30 steps is the model's E[v]
    p = R.log_likelihood(rbm, R.all_states(4)).exp()
    assert torch.allclose(chain[-1].mean(0), p @ R.all_states(4), atol=0.03)


def test_fit_rbm_learns_and_stack_unrolls():
    X = data.load_digits("train")[0][:500].flatten(1)  # (500, 64) in [0, 1]
    rbms, errors = R.pretrain_stack(X, [64, 32, 8], num_epochs=8, lr=0.1, batch_size=25, progress=False)
    assert [(r.n_visible, r.n_hidden) for r in rbms] == [(64, 32), (32, 8)]
    assert all(e[-1] < 0.7 * e[0] for e in errors), errors
    sae = R.StackedAutoencoder(rbms)
    with torch.no_grad():  # the encoder is the RBMs' p(h | v), the decoder their p(v | h)
        assert torch.allclose(sae.encode(X), rbms[1].hidden_probs(rbms[0].hidden_probs(X)), atol=1e-6)
        assert torch.allclose(sae(X), rbms[0].visible_probs(rbms[1].visible_probs(sae.encode(X))), atol=1e-6)
        before = float(F.mse_loss(sae(X), X))
    losses = fit_autoencoder(sae, X, num_epochs=8, lr=3e-3, batch_size=25, device=torch.device("cpu"),
                             progress=False)
    with torch.no_grad():
        after = float(F.mse_loss(sae(X), X))
    assert losses[-1] < losses[0] and after < 0.8 * before, (before, after)
    assert sae(X[:3].reshape(3, 1, 8, 8)).shape == (3, 1, 8, 8)  # images in, images out
    samples = R.generate(rbms, 5, num_steps=20)
    assert samples.shape == (5, 64) and float(samples.min()) >= 0 and float(samples.max()) <= 1


def test_save_and_load_roundtrip(tmp_path):
    rbms = [R.RBM(6, 4, weight_std=0.5, seed=1), R.RBM(4, 2, weight_std=0.5, seed=2)]
    sae = R.StackedAutoencoder(rbms)
    R.save_stack(tmp_path / "s.pt", rbms, sae, info={"note": 1})
    rbms2, sae2, info = R.load_stack(tmp_path / "s.pt")
    x = torch.rand(3, 6)
    assert info == {"note": 1} and not sae2.training
    with torch.no_grad():  # float16 storage: equal to 1e-3
        assert torch.allclose(sae2(x), sae(x), atol=1e-3)
        assert torch.allclose(rbms2[1].W, rbms[1].W, atol=1e-3)


def test_bernoulli_samples_have_the_probabilities_and_follow_the_generator():
    p = torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64).repeat(20000, 1)
    s = R.bernoulli(p, torch.Generator().manual_seed(0))
    assert s.dtype == torch.float64 and set(s.unique().tolist()) <= {0.0, 1.0}
    assert s[:, 0].sum() == 0 and s[:, 2].sum() == len(p)  # p = 0 never, p = 1 always
    assert abs(float(s[:, 1].mean()) - 0.3) < 4 * (0.3 * 0.7 / len(p)) ** 0.5  # within 4 standard errors
    assert torch.equal(s, R.bernoulli(p, torch.Generator().manual_seed(0)))
    assert not torch.equal(s, R.bernoulli(p, torch.Generator().manual_seed(1)))


def test_reconstruction_error_of_a_blank_rbm_is_a_quarter():
    rbm = R.RBM(6, 3, weight_std=0.0)  # W = 0, biases 0: every reconstruction is 1/2
    v = torch.tensor([[0.0, 1.0, 1.0, 0.0, 1.0, 0.0], [1.0] * 6])
    assert R.reconstruction_error(rbm, v) == pytest.approx(0.25)  # (0 − ½)² = (1 − ½)² = ¼
    with torch.no_grad():
        rbm.b.fill_(math.log(3))  # visible probabilities σ(log 3) = 3/4
    assert R.reconstruction_error(rbm, torch.ones(2, 6)) == pytest.approx(1 / 16)


def test_the_shipped_stack_scores_what_it_records(tmp_path):
    import shutil

    from cnnlib.snapshots import DATA_DIR

    rbms, sae, info = R.load_shipped()
    assert [(r.W.shape[0], r.W.shape[1]) for r in rbms] == [(784, 256), (256, 64)] and not sae.training
    X, _ = data.load_fashion_mnist("test")
    X = X[:1000].flatten(1)  # the script's 1,000 test images
    with torch.no_grad():
        mse = float(F.mse_loss(sae(X), X))
    assert mse == pytest.approx(info["test_mse_after"], rel=0.02)  # float16 storage
    assert mse < info["test_mse_before"] < float(F.mse_loss(X.mean(0).expand_as(X), X))  # better than the mean
    shutil.copytree(DATA_DIR / "sae", tmp_path / "sae")
    with open(tmp_path / "sae" / "fashion-784-256-64.pt", "ab") as f:
        f.write(b"x")
    with pytest.raises(ValueError, match="load_shipped: .* does not match"):
        R.load_shipped(data_dir=tmp_path / "sae")


BAD = [
    (lambda: R.RBM(0, 3), ValueError, "RBM: expected n_visible"),
    (lambda: R.RBM(4, 2.5), TypeError, "RBM: expected n_hidden to be an integer"),
    (lambda: R.RBM(4, 3, weight_std=-1), ValueError, "RBM: expected weight_std"),
    (lambda: _tiny().hidden_probs(torch.tensor([[0.0, 1.0, 2.0, 0.5]])), ValueError, r"in \[0, 1\]"),
    (lambda: _tiny().hidden_probs(torch.tensor([[0.0, -0.1, 1.0, 0.5]])), ValueError, r"in \[0, 1\]"),
    (lambda: _tiny().hidden_probs(torch.rand(2, 5)), ValueError, r"hidden_probs: expected v of shape \(N, 4\)"),
    (lambda: _tiny().hidden_probs(torch.rand(2, 1, 2, 2)), ValueError, r"flatten"),
    (lambda: _tiny().hidden_probs(torch.ones(2, 4, dtype=torch.uint8)), TypeError, "floating-point"),
    (lambda: _tiny().free_energy(torch.full((1, 4), float("nan"))), ValueError, "finite"),
    (lambda: _tiny().free_energy([[0, 1, 0, 1]]), TypeError, "torch.Tensor"),
    (lambda: _tiny().visible_probs(torch.rand(2, 4)), ValueError, r"visible_probs: expected h of shape \(N, 3\)"),
    (lambda: _tiny().energy(torch.rand(2, 4), torch.rand(3, 3)), ValueError, "as many rows"),
    (lambda: R.cd_gradient(_tiny(), DATA, k=0), ValueError, "cd_gradient: expected k in >= 1"),
    (lambda: R.cd_gradient(_tiny(), DATA, k=1, generator=0), TypeError, "generator"),
    (lambda: R.cd_gradient(_tiny(), DATA * 3), ValueError, r"cd_gradient: expected v in \[0, 1\]"),
    (lambda: R.gibbs_chain(_tiny(), DATA, num_steps=0), ValueError, "gibbs_chain: expected num_steps"),
    (lambda: R.fit_rbm(_tiny(), DATA, lr=0), ValueError, r"fit_rbm: expected lr in \(0"),
    (lambda: R.fit_rbm(_tiny(), DATA, momentum=1.5), ValueError, "fit_rbm: expected momentum"),
    (lambda: R.exact_gradient(R.RBM(21, 2), torch.rand(1, 21)), ValueError, "at most 20 visible"),
    (lambda: R.all_states(30), ValueError, "all_states"),
    (lambda: R.pretrain_stack(DATA, [4]), ValueError, "at least two"),
    (lambda: R.pretrain_stack(DATA, [5, 3]), ValueError, r"sizes\[0\]"),
    (lambda: R.StackedAutoencoder([]), TypeError, "non-empty list of RBMs"),
    (lambda: R.StackedAutoencoder([R.RBM(4, 3), R.RBM(2, 1)]), ValueError, "must match"),
    (lambda: R.StackedAutoencoder([_tiny()])(torch.rand(2, 5)), ValueError, "expected 4 values"),
    (lambda: R.StackedAutoencoder([_tiny()])(torch.rand(2, 4) + 1), ValueError, r"in \[0, 1\]"),
    (lambda: R.generate([_tiny()], 0), ValueError, "generate: expected num_samples"),
]


@pytest.mark.parametrize("call, error, message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()
