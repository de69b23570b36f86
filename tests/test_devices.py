"""Device choice and seeding."""

import pytest
import torch

import cnnlib


def test_device_is_available_backend():
    d = cnnlib.device()
    assert d.type in ("cuda", "mps", "cpu")
    x, w = torch.randn(2, 3, 9, 9), torch.randn(4, 3, 3, 3)
    on_device = torch.nn.functional.conv2d(x.to(d), w.to(d))  # it computes there, and gives the CPU's answer
    assert on_device.device.type == d.type
    torch.testing.assert_close(on_device.cpu(), torch.nn.functional.conv2d(x, w), atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("cuda, mps, want", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_device_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, want):
    monkeypatch.delenv("CNNLIB_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert cnnlib.device() == torch.device(want)


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
