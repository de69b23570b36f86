"""The building blocks of a CNN, written from scratch: convolution, pooling (subsampling) and ReLU.

Each function takes a batch ``x`` of shape ``(N, C, H, W)`` and agrees with its ``torch.nn.functional``
twin (the tests check it to 1e-5 over random shapes, strides and paddings). They are written for reading,
with loops over the few kernel offsets and tensor operations over everything else.

Convolution (as in every deep-learning library, really a cross-correlation) with ``O`` filters of size
``C × kH × kW``, stride ``s`` and zero padding ``p``:

    y[n, o, i, j] = b[o] + Σ_c Σ_u Σ_v  w[o, c, u, v] · x_pad[n, c, s·i + u, s·j + v],

    H_out = ⌊(H + 2p − kH) / s⌋ + 1   (and the same for W).

Max pooling keeps the largest value of each ``k × k`` window, average pooling its mean; with stride ``s < k``
the windows overlap (ZFNet and AlexNet pool 3×3 windows with stride 2). ReLU is ``y = max(x, 0)``.

Two kernels are written for speed instead, with the same maths as PyTorch's in fewer passes over memory:
:func:`separable_max_pool2d` and :func:`local_response_norm` (the occlusion engine uses both, the deconvnet the
LRN).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import checks


def pair(v, name: str = "size", fn: str = "pair") -> tuple[int, int]:
    """``(along H, along W)`` from an int or a pair of ints (how ``nn.Conv2d``/``nn.MaxPool2d`` store kernel
    sizes, strides and paddings); a clear ``TypeError`` naming ``fn`` and ``name`` for anything else."""
    if isinstance(v, bool):
        raise TypeError(f"{fn}: expected {name} to be an int or a pair of ints, got {v!r}")
    if isinstance(v, int):
        v = (v, v)
    if not (isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(a, int) and not isinstance(a, bool)
                                                                  for a in v)):
        raise TypeError(f"{fn}: expected {name} to be an int or a pair of ints, got {v!r}")
    return int(v[0]), int(v[1])


def _check_4d(x, fn: str) -> torch.Tensor:
    """A finite float batch ``(N, C, H, W)`` with at least one image, else a clear error."""
    if isinstance(x, torch.Tensor) and x.ndim == 3:
        raise ValueError(f"{fn}: expected a 4-D input (N, C, H, W), got shape {tuple(x.shape)} "
                         "(add a batch dimension with x[None] or x.unsqueeze(0))")
    return checks.images(fn, x, ndim=4)


def output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, ceil_mode: bool = False) -> int:
    """Output length of a convolution or pooling along one axis: ``⌊(size + 2·padding − kernel) / stride⌋ + 1``.

    With ``ceil_mode`` (pooling only) the division rounds up, but the last window must start inside the input
    or its left padding (PyTorch's and Caffe's rule)."""
    if not ceil_mode:
        return (size + 2 * padding - kernel) // stride + 1
    out = -(-(size + 2 * padding - kernel) // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def conv_padding(padding, kernel: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> tuple[int, int, int, int]:
    """A convolution's zero padding as ``(top, bottom, left, right)``: an int or a pair as ``nn.Conv2d`` takes it,
    ``"valid"`` (none) or ``"same"`` (``d·(k − 1)`` in all, the smaller half before, as PyTorch pads)."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        tot = [dilation[i] * (kernel[i] - 1) for i in range(2)]
        return (tot[0] // 2, tot[0] - tot[0] // 2, tot[1] // 2, tot[1] - tot[1] // 2)
    p = pair(padding, "padding", "conv_padding")
    return (p[0], p[0], p[1], p[1])


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> torch.Tensor:
    """2-D convolution (cross-correlation) from scratch, equal to ``F.conv2d``.

    Args:
        x: ``(N, C, H, W)`` input.
        weight: ``(O, C, kH, kW)`` filters.
        bias: ``(O,)`` or ``None``.
        stride, padding: an int or ``(along H, along W)``; padding adds zeros on every side.

    Returns:
        ``(N, O, H_out, W_out)``.
    """
    x = _check_4d(x, "conv2d")
    checks.tensor("conv2d", weight, "weight")
    if weight.ndim != 4:
        raise ValueError(f"conv2d: expected weight of shape (O, C, kH, kW), got {tuple(weight.shape)}")
    if weight.dtype != x.dtype or (bias is not None and bias.dtype != x.dtype):
        raise TypeError(f"conv2d: expected weight and bias of the dtype of x ({x.dtype}), got {weight.dtype}"
                        f"{'' if bias is None else f' and {bias.dtype}'}")
    O, C, kH, kW = weight.shape
    if x.shape[1] != C:
        raise ValueError(
            f"conv2d: input has {x.shape[1]} channels but the filters expect {C} "
            f"(x {tuple(x.shape)}, weight {tuple(weight.shape)})"
        )
    if bias is not None and (not isinstance(bias, torch.Tensor) or bias.shape != (O,)):
        raise ValueError(f"conv2d: expected bias of shape ({O},), got {getattr(bias, 'shape', bias)}")
    (sh, sw), (ph, pw) = pair(stride, "stride", "conv2d"), pair(padding, "padding", "conv2d")
    if sh < 1 or sw < 1 or ph < 0 or pw < 0:
        raise ValueError(f"conv2d: stride must be >= 1 and padding >= 0, got stride={stride}, padding={padding}")
    N, _, H, W = x.shape
    H_out, W_out = output_size(H, kH, sh, ph), output_size(W, kW, sw, pw)
    if H_out < 1 or W_out < 1:
        raise ValueError(f"conv2d: a {kH}×{kW} kernel does not fit a {H}×{W} input with padding {padding}")
    x_pad = F.pad(x, (pw, pw, ph, ph))  # (N, C, H + 2ph, W + 2pw)
    y = x.new_zeros(N, O, H_out, W_out)
    for u in range(kH):
        for v in range(kW):
            # every output position (i, j) reads x_pad[:, :, s·i + u, s·j + v]: patch is (N, C, H_out, W_out)
            patch = x_pad[:, :, u: u + sh * (H_out - 1) + 1: sh, v: v + sw * (W_out - 1) + 1: sw]
            y += torch.einsum("nchw,oc->nohw", patch, weight[:, :, u, v])
    if bias is not None:
        y += bias.view(1, O, 1, 1)
    return y


def pool_windows(x: torch.Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 fn: str = "pool_windows") -> torch.Tensor:
    """Every pooling window of ``x`` ``(N, C, H, W)`` exactly as ``nn.MaxPool2d(kernel_size, stride, padding,
    ceil_mode=ceil_mode)`` takes them: ``(N, C, H_out, W_out, kH·kW)``, window positions in row-major order.

    Positions outside the input (the padding, and the overhang of the last window with ``ceil_mode``) hold
    ``−∞``, which a max ignores. ``stride`` defaults to the kernel size; ``H_out`` is :func:`output_size`.
    """
    x = _check_4d(x, fn)
    kH, kW = pair(kernel_size, "kernel_size", fn)
    sH, sW = (kH, kW) if stride is None else pair(stride, "stride", fn)
    pH, pW = pair(padding, "padding", fn)
    if min(kH, kW, sH, sW) < 1 or min(pH, pW) < 0 or 2 * pH > kH or 2 * pW > kW:
        raise ValueError(f"{fn}: expected kernel_size and stride >= 1 and 0 <= padding <= kernel_size / 2, got "
                         f"{kernel_size}, {stride}, {padding}")
    H, W = x.shape[2:]
    if kH > H + 2 * pH or kW > W + 2 * pW:
        raise ValueError(f"{fn}: a {kH}×{kW} window does not fit a {H}×{W} input with padding {padding}")
    H_out, W_out = output_size(H, kH, sH, pH, ceil_mode), output_size(W, kW, sW, pW, ceil_mode)
    span_h, span_w = (H_out - 1) * sH + kH, (W_out - 1) * sW + kW  # rows and columns the windows cover
    xp = F.pad(x, (pW, max(span_w - W - pW, 0), pH, max(span_h - H - pH, 0)), value=float("-inf"))
    cols = [
        xp[:, :, u: u + sH * (H_out - 1) + 1: sH, v: v + sW * (W_out - 1) + 1: sW]
        for u in range(kH)
        for v in range(kW)
    ]
    return torch.stack(cols, dim=-1)


def max_pool2d(x: torch.Tensor, kernel_size: int | tuple[int, int] = 2, stride=None) -> torch.Tensor:
    """Max pooling from scratch, equal to ``F.max_pool2d`` (no padding): ``y = max`` over each window.

    Args:
        x: ``(N, C, H, W)``. kernel_size: window size. stride: step (default: the window size).

    Returns:
        ``(N, C, H_out, W_out)``.
    """
    return pool_windows(x, kernel_size, stride, fn="max_pool2d").amax(dim=-1)


def avg_pool2d(x: torch.Tensor, kernel_size: int | tuple[int, int] = 2, stride=None) -> torch.Tensor:
    """Average pooling from scratch, equal to ``F.avg_pool2d`` (no padding): ``y = mean`` over each window."""
    return pool_windows(x, kernel_size, stride, fn="avg_pool2d").mean(dim=-1)


def separable_max_pool2d(x: torch.Tensor, k: tuple[int, int], s: tuple[int, int],
                         p: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """``F.max_pool2d(x, k, s, p)`` (dilation 1, ``ceil_mode=False``) as a separable maximum of strided views.

    ``out[i, j] = max_{a < k₀, b < k₁} x_pad[s₀·i + a, s₁·j + b]`` with ``x_pad`` padded by ``p`` with −∞: the
    maximum over rows first (``k₀`` views), then over columns (``k₁`` views), each an elementwise ``maximum``.
    On the small maps of an occlusion batch (:mod:`cnnlib.incremental`) this is faster than PyTorch's CPU kernel
    and gives the same numbers (a maximum does not round). ``x``: ``(N, C, H, W)`` → ``(N, C, Ho, Wo)``; no
    checks (the engine calls it on every batch).
    """
    if any(p):
        x = F.pad(x, (p[1], p[1], p[0], p[0]), value=float("-inf"))
    H, W = x.shape[-2:]
    Ho, Wo = (H - k[0]) // s[0] + 1, (W - k[1]) // s[1] + 1
    rows = x[..., 0: s[0] * (Ho - 1) + 1: s[0], :]
    for a in range(1, k[0]):
        rows = torch.maximum(rows, x[..., a: a + s[0] * (Ho - 1) + 1: s[0], :])
    out = rows[..., 0: s[1] * (Wo - 1) + 1: s[1]]
    for b in range(1, k[1]):
        out = torch.maximum(out, rows[..., b: b + s[1] * (Wo - 1) + 1: s[1]])
    return out


def local_response_norm(x: torch.Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> torch.Tensor:
    """``F.local_response_norm`` (Krizhevsky et al. 2012) over channels, as a sum of shifted views (fewer passes
    over memory than PyTorch's, which pools the squares with a 3-D average pooling):

        out_c = x_c · (k + α/n · Σ_{c' = c − ⌊n/2⌋}^{c + ⌈n/2⌉ − 1} x_{c'}²)^(−β),   n = ``size``,

    channels outside ``0 … C − 1`` counting as 0 (PyTorch's padding). ``x``: ``(N, C, H, W)``, same shape out.
    """
    sq = F.pad(x * x, (0, 0, 0, 0, size // 2, (size - 1) // 2))  # (N, C + n − 1, H, W)
    C = x.shape[1]
    total = sq[:, 0:C]
    for j in range(1, size):
        total = total + sq[:, j: j + C]
    return x * (total * (alpha / size) + k).pow(-beta)


def relu(x: torch.Tensor) -> torch.Tensor:
    """Rectified linear unit ``y = max(x, 0)``, elementwise; any shape."""
    checks.tensor("relu", x)
    return torch.where(x > 0, x, torch.zeros_like(x))


#: Hand-made 3×3 kernels for chapter 3 (applied to one gray channel).
KERNELS: dict[str, torch.Tensor] = {
    "identity": torch.tensor([[0.0, 0, 0], [0, 1, 0], [0, 0, 0]]),
    "box blur": torch.full((3, 3), 1 / 9),
    "gaussian blur": torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16,
    "sharpen": torch.tensor([[0.0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    "vertical edges (Sobel x)": torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
    "horizontal edges (Sobel y)": torch.tensor([[-1.0, -2, -1], [0, 0, 0], [1, 2, 1]]),
    "outline (Laplacian)": torch.tensor([[-1.0, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
    "emboss": torch.tensor([[-2.0, -1, 0], [-1, 1, 1], [0, 1, 2]]),
}


def apply_kernel(image: torch.Tensor, kernel: torch.Tensor | str, stride: int = 1, padding: int = 1) -> torch.Tensor:
    """Convolve a gray image ``(1, H, W)`` (or ``(H, W)``) with one 2-D kernel; returns ``(H_out, W_out)``."""
    if isinstance(kernel, str):
        kernel = KERNELS[checks.one_of("apply_kernel", kernel, tuple(KERNELS), "kernel")]
    checks.tensor("apply_kernel", kernel, "kernel")
    if kernel.ndim != 2 or kernel.numel() == 0:
        raise ValueError(f"apply_kernel: expected a 2-D kernel (kH, kW), got shape {tuple(kernel.shape)}")
    checks.finite("apply_kernel", checks.floating("apply_kernel", kernel, "kernel"), "kernel")
    checks.tensor("apply_kernel", image, "image")
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3 or image.shape[0] != 1:
        raise ValueError(f"apply_kernel: expected a gray image (1, H, W) or (H, W), got {tuple(image.shape)}")
    image = checks.images("apply_kernel", image, ndim=3, name="image")
    stride = checks.positive_int("apply_kernel", stride, "stride")
    padding = checks.positive_int("apply_kernel", padding, "padding", 0)
    if output_size(image.shape[1], kernel.shape[0], stride, padding) < 1 or \
            output_size(image.shape[2], kernel.shape[1], stride, padding) < 1:
        raise ValueError(f"apply_kernel: a {tuple(kernel.shape)} kernel does not fit a {tuple(image.shape[1:])} "
                         f"image with padding {padding}")
    return conv2d(image[None], kernel[None, None].to(image), stride=stride, padding=padding)[0, 0]
