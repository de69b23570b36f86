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

from .devices import device as default_device


class ConvAutoencoder(nn.Module):
    """28×28×1 → code ``(code_channels, 7, 7)`` → 28×28×1 (sigmoid output in [0, 1])."""

    def __init__(self, in_channels: int = 1, width: int = 16, code_channels: int = 4):
        super().__init__()
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
        if x.ndim != 4:
            raise ValueError(f"ConvAutoencoder: expected images (N, C, H, W), got {tuple(x.shape)}")
        return self.decoder(self.encoder(x))


def fit_autoencoder(model: nn.Module, X: torch.Tensor, *, num_epochs: int = 3, lr: float = 1e-3, batch_size: int = 128,
                    seed: int = 0, device=None, progress: bool = True) -> list[float]:
    """Train ``model`` to reconstruct ``X`` ``(N, C, H, W)`` with Adam on the mean squared error.

    Returns:
        The mean training loss of each epoch.
    """
    dev = device or default_device()
    model.to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for epoch in range(num_epochs):
        order, total = torch.randperm(len(X), generator=gen), 0.0
        for i in tqdm(range(0, len(X), batch_size), desc=f"autoencoder epoch {epoch + 1}", leave=False,
                      disable=not progress):
            xb = X[order[i: i + batch_size]].to(dev)
            loss = F.mse_loss(model(xb), xb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        losses.append(total / len(X))
    model.eval()
    return losses
