"""Shared test settings: matplotlib draws off-screen; every test starts from the same seed."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def _bn(channels, seed):
    g = torch.Generator().manual_seed(seed)
    bn = torch.nn.BatchNorm2d(channels, eps=1e-3)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1, generator=g)
        bn.running_var.uniform_(0.5, 2, generator=g)
        bn.weight.uniform_(0.5, 1.5, generator=g)
        bn.bias.uniform_(-0.5, 0.5, generator=g)
    return bn


@pytest.fixture
def chained_model():
    """Conv → BatchNorm (→ rectifier) chains, with and without a zero padding before them."""
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(
        nn.ZeroPad2d(1), nn.Conv2d(3, 5, 3), _bn(5, 1), nn.ReLU6(),  # symmetric padding: folded too
        nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(5, 4, 3, stride=2, bias=False), _bn(4, 2), nn.ReLU(),  # asymmetric
        nn.Conv2d(4, 4, 1, groups=2), _bn(4, 3),  # no rectifier
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
