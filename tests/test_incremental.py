"""The incremental engine's own kernels against PyTorch's (the engine's maps are tested in test_occlusion.py)."""

import pytest
import torch
import torch.nn.functional as F

from cnnlib import incremental


@pytest.mark.parametrize("shape,k,s,p", [
    ((2, 3, 28, 28), (3, 3), (2, 2), (1, 1)),  # ZFNet-small's pools
    ((1, 4, 7, 9), (2, 3), (2, 1), (1, 0)),
    ((3, 2, 5, 5), (5, 5), (1, 1), (2, 2)),
    ((1, 1, 6, 6), (1, 1), (3, 3), (0, 0)),
    ((2, 2, 13, 11), (3, 2), (3, 3), (0, 1)),
])
def test_max_pool2d_equals_torch(shape, k, s, p):
    torch.manual_seed(0)
    x = torch.randn(shape)
    x[0, 0, 0, 0] = -1e30  # far below the others, beside the −∞ padding
    assert torch.equal(incremental.max_pool2d(x, k, s, p), F.max_pool2d(x, k, s, p))


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("channels", [1, 3, 8])
def test_local_response_norm_equals_torch(size, channels):
    torch.manual_seed(size)
    x = torch.randn(2, channels, 5, 4, dtype=torch.float64) * 3
    want = F.local_response_norm(x, size, alpha=0.3, beta=0.75, k=2.0)
    assert torch.allclose(incremental.local_response_norm(x, size, 0.3, 0.75, 2.0), want, rtol=1e-12, atol=0)


def test_the_module_kernels_are_used_only_where_they_match():
    lrn = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
    x = torch.randn(2, 7, 6, 6)
    assert torch.allclose(incremental._module_kernel(lrn)(x), lrn(x), rtol=1e-6, atol=0)
    pool = torch.nn.MaxPool2d(3, 2, 1)
    assert torch.equal(incremental._module_kernel(pool)(x), pool(x))
    for other in (torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, dilation=2),
                  torch.nn.MaxPool2d(2, return_indices=True), torch.nn.ReLU()):
        assert incremental._module_kernel(other) is None
