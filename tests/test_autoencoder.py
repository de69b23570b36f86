"""The autoencoder learns to reconstruct, which a random one does not."""

import pytest
import torch
import torch.nn.functional as F

from cnnlib import data
from cnnlib.autoencoder import ConvAutoencoder, fit_autoencoder


def test_shapes():
    model = ConvAutoencoder()
    x = torch.rand(2, 1, 28, 28)
    assert model.encoder(x).shape == (2, 4, 7, 7) and model(x).shape == x.shape
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        model(torch.rand(28, 28))


def test_training_reconstructs():
    X, _ = data.load_digits("train")  # 8×8: pad to 28×28 so the test stays fast and real
    X = F.pad(X, (10, 10, 10, 10))[:512]
    torch.manual_seed(0)
    model = ConvAutoencoder()
    with torch.no_grad():
        before = float(F.mse_loss(model(X), X))
    losses = fit_autoencoder(model, X, num_epochs=8, lr=3e-3, batch_size=64, device=torch.device("cpu"), progress=False)
    with torch.no_grad():
        after = float(F.mse_loss(model(X), X))
    assert losses[-1] < losses[0] and after < before / 5
