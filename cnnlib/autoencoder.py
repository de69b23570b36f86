"""A small convolutional autoencoder: the network that *is* trained to reconstruct its input.

The deconvnet of chapter 5 maps activations back to pixels without ever being trained to do so; an autoencoder
is the opposite case (the lecture's "stacked autoencoder", which produces the same output as its input). An
encoder ``e`` squeezes an image ``x`` into a code ``z = e(x)`` smaller than the image, a decoder ``d`` maps it
back, and both are trained to minimise the reconstruction error

    L = (1/N) Σₙ ‖d(e(xₙ)) − xₙ‖²  (mean over pixels).

Here ``e`` is two strided convolutions and ``d`` two transposed convolutions — the same operation the deconvnet
uses, but with filters *learned* for reconstruction instead of borrowed from a classifier.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from . import checks
from .devices import device as default_device
from .progress import hidden


class ConvAutoencoder(nn.Module):
    """28×28×1 → code ``(code_channels, 7, 7)`` → 28×28×1 (sigmoid output in [0, 1])."""

    def __init__(self, in_channels: int = 1, width: int = 16, code_channels: int = 4):
        super().__init__()
        in_channels = checks.positive_int("ConvAutoencoder", in_channels, "in_channels")
        width = checks.positive_int("ConvAutoencoder", width, "width")
        code_channels = checks.positive_int("ConvAutoencoder", code_channels, "code_channels")
        self.in_channels = in_channels
        self.encoder = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(in_channels, width, 3, stride=2, padding=1)), ("relu1", nn.ReLU()),  # 28 → 14
            ("conv2", nn.Conv2d(width, code_channels, 3, stride=2, padding=1)), ("relu2", nn.ReLU()),  # 14 → 7
        ]))
        self.decoder = nn.Sequential(OrderedDict([
            ("deconv2", nn.ConvTranspose2d(code_channels, width, 3, stride=2, padding=1, output_padding=1)),
            ("relu3", nn.ReLU()),  # 7 → 14
            ("deconv1", nn.ConvTranspose2d(width, in_channels, 3, stride=2, padding=1, output_padding=1)),
            ("sigmoid", nn.Sigmoid()),  # 14 → 28
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        checks.images("ConvAutoencoder", x, ndim=4, channels=self.in_channels)
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"ConvAutoencoder: expected a height and width divisible by 4 (two stride-2 layers), "
                             f"got {tuple(x.shape)}")
        return self.decoder(self.encoder(x))


def fit_autoencoder(model: nn.Module, X: torch.Tensor, *, num_epochs: int = 3, lr: float = 1e-3, batch_size: int = 128,
                    seed: int = 0, device=None, progress: bool = True) -> list[float]:
    """Train ``model`` to reconstruct ``X`` — images ``(N, C, H, W)`` or vectors ``(N, D)`` (the stacked
    autoencoder of :mod:`cnnlib.rbm`) — with Adam on the mean squared error.

    Returns:
        The mean training loss of each epoch.
    """
    X = checks.images("fit_autoencoder", X, ndim=(2, 4))
    num_epochs = checks.positive_int("fit_autoencoder", num_epochs, "num_epochs")
    lr = checks.number("fit_autoencoder", lr, "lr", 0, low_open=True)
    batch_size = checks.positive_int("fit_autoencoder", batch_size, "batch_size")
    seed = checks.positive_int("fit_autoencoder", seed, "seed", 0)
    checks.model_device("fit_autoencoder", model)
    dev = torch.device(device) if device is not None else default_device()
    model.to(dev).train()
    checks.to_model("fit_autoencoder", model, X[:1], "X")  # the dtype of the parameters
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for epoch in range(num_epochs):
        order, total = torch.randperm(len(X), generator=gen), 0.0
        for i in tqdm(range(0, len(X), batch_size), desc=f"autoencoder epoch {epoch + 1}", leave=False,
                      disable=hidden(progress)):
            xb = X[order[i: i + batch_size]].to(dev)  # (B, C, H, W) or (B, D)
            out = model(xb)
            if out.shape != xb.shape:
                raise ValueError(f"fit_autoencoder: expected the model to return the shape of its input "
                                 f"{tuple(xb.shape)}, got {tuple(out.shape)}")
            loss = F.mse_loss(out, xb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        losses.append(total / len(X))
    model.eval()
    return losses
