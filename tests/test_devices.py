"""Device choice and seeding."""

import pytest
import torch

import cnnlib


def test_device_is_available_backend():
    d = cnnlib.device()
    assert d.type in ("cuda", "mps", "cpu")
    assert torch.zeros(1, device=d).device.type == d.type


def test_device_override(monkeypatch):
    monkeypatch.setenv("CNNLIB_DEVICE", "cpu")
    assert cnnlib.device().type == "cpu"
    with pytest.raises(ValueError, match="expected one of"):
        cnnlib.device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_device_is_refused():
    with pytest.raises(ValueError, match="not available"):
        cnnlib.device("cuda")


def test_seed_everything_repeats():
    cnnlib.seed_everything(7)
    a = torch.randn(5)
    cnnlib.seed_everything(7)
    assert torch.equal(a, torch.randn(5))
    with pytest.raises(ValueError):
        cnnlib.seed_everything(-1)
