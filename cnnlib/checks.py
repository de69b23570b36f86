"""Checks of the inputs a student gets wrong, shared by every public function of cnnlib.

Each check raises ``ValueError`` or ``TypeError`` with a message that starts with the name of the public
function that was called (``fn``), then says what was expected and what came, e.g.

    occlusion_maps: expected a floating-point image tensor, got dtype torch.uint8 (convert with x.float() / 255)

so that a wrong input never turns into a silent wrong picture or an error from deep inside torch.
"""

from __future__ import annotations

import contextlib
import numbers
import re
from collections.abc import Sequence

import torch
import torch.nn as nn


def tensor(fn: str, x, name: str = "x") -> torch.Tensor:
    """``x`` if it is a tensor, else ``TypeError``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{fn}: expected {name} to be a torch.Tensor, got {type(x).__name__}")
    return x


def floating(fn: str, x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """``x`` if it is a floating-point tensor (what a network takes), else ``TypeError``."""
    tensor(fn, x, name)
    if x.is_floating_point():
        return x
    hint = " (convert with x.float() / 255)" if x.dtype == torch.uint8 else " (convert with x.float())"
    raise TypeError(f"{fn}: expected {name} to be a floating-point tensor (float32), got dtype {x.dtype}{hint}")


def finite(fn: str, x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """``x`` if it holds no NaN or infinity, else ``ValueError`` (counting them)."""
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        raise ValueError(f"{fn}: expected finite values in {name}, got {int(bad.sum())} NaN or infinite "
                         f"entries of {x.numel()}")
    return x


def images(fn: str, x, ndim: int | tuple[int, ...] = 4, channels: int | None = None, name: str = "x",
           nonempty: bool = True) -> torch.Tensor:
    """``x`` if it is a finite floating-point tensor of rank ``ndim`` (4: ``(N, C, H, W)``, 3: ``(C, H, W)``),
    with ``channels`` channels when given and at least one image; else a clear error."""
    tensor(fn, x, name)
    ranks = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    shapes = {4: "(N, C, H, W)", 3: "(C, H, W)", 2: "(N, D)"}
    if x.ndim not in ranks:
        want = " or ".join(shapes.get(r, f"rank {r}") for r in ranks)
        raise ValueError(f"{fn}: expected {name} of shape {want}, got {tuple(x.shape)}")
    floating(fn, x, name)
    if nonempty and x.numel() == 0:
        raise ValueError(f"{fn}: expected at least one image in {name}, got an empty tensor {tuple(x.shape)}")
    if channels is not None and x.shape[-3] != channels:
        raise ValueError(f"{fn}: expected {channels} channels in {name}, got {x.shape[-3]} (shape {tuple(x.shape)})")
    return finite(fn, x, name)


def positive_int(fn: str, value, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer in ``[minimum, maximum]``, else a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{fn}: expected {name} to be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        rng = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{fn}: expected {name} in {rng}, got {value}")
    return value


def number(fn: str, value, name: str, low: float | None = None, high: float | None = None,
           low_open: bool = False) -> float:
    """``value`` as a finite ``float`` in ``[low, high]`` (``(low, high]`` with ``low_open``), else a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: expected {name} to be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{fn}: expected {name} to be finite, got {value}")
    if (low is not None and (value < low or (low_open and value == low))) or (high is not None and value > high):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ValueError(f"{fn}: expected {name} in {'(' if low_open else '['}{lo}, {hi}], got {value:g}")
    return value


def layer_list(fn: str, layers, name: str = "layers") -> list[str]:
    """``layers`` as a list of names; a single string is refused (``"conv1"`` would be read as 5 names)."""
    if isinstance(layers, str):
        raise TypeError(f"{fn}: expected {name} to be a list of layer names, got the string {layers!r} "
                        f"(write [{layers!r}])")
    if not isinstance(layers, Sequence) or not layers or not all(isinstance(n, str) for n in layers):
        raise TypeError(f"{fn}: expected {name} to be a non-empty list of layer names, got {layers!r}")
    return list(layers)


def module(fn: str, model, name: str = "model") -> nn.Module:
    """``model`` if it is a ``torch.nn.Module``, else ``TypeError``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{fn}: expected {name} to be a torch.nn.Module, got {type(model).__name__}")
    return model


def model_device(fn: str, model: nn.Module) -> torch.device:
    """The device of ``model``'s parameters (or buffers); ``ValueError`` for a model that has neither."""
    module(fn, model)
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    raise ValueError(f"{fn}: expected a model with parameters (to know its device), got a "
                     f"{type(model).__name__} without any")


def to_model(fn: str, model: nn.Module, x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """``x`` moved to ``model``'s device, if its dtype is the dtype of the model's parameters (float32 for a
    float32 model); else ``TypeError`` (torch's own message, "Input type ... and bias type ... should be the
    same", comes from deep inside a convolution)."""
    dev = model_device(fn, model)
    want = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    if want is not None and x.dtype != want:
        raise TypeError(f"{fn}: expected {name} of dtype {want} like the model's parameters, got {x.dtype} "
                        f"(convert with x.to({want}))")
    return x.to(dev)


_STOCHASTIC = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd, nn.Dropout, nn.AlphaDropout)


def eval_mode(fn: str, model: nn.Module) -> nn.Module:
    """``model`` if no BatchNorm or dropout layer of it is in training mode, else ``ValueError``: in training
    mode batch statistics and random masks would change the answer from one call to the next."""
    module(fn, model)
    busy = [n or type(m).__name__ for n, m in model.named_modules() if isinstance(m, _STOCHASTIC) and m.training]
    if busy:
        raise ValueError(f"{fn}: expected the model in eval mode (call model.eval()), got training mode in "
                         f"{len(busy)} BatchNorm/dropout layer(s), e.g. {busy[0]!r}")
    return model


#: torch's messages for an input a network's layers cannot take: the wrong number of channels for a convolution,
#: a flattened size a linear layer was not built for, an image too small for a pooling or a kernel.
_INPUT_MISMATCH = re.compile(r"expected input\[.*\] to have \d+ channels|mat1 and mat2 shapes cannot be multiplied"
                             r"|Output size is too small|Kernel size can't be greater than actual input size")


@contextlib.contextmanager
def model_input(fn: str, shape, name: str = "x"):
    """Run a model inside this block: if one of its layers cannot take the input (torch's ``RuntimeError`` for
    the wrong number of channels, an image size its linear layer was not built for, an image too small for a
    pooling or a kernel), raise ``ValueError`` naming ``fn``, the input's ``shape`` and torch's message instead
    of an error from deep inside the network. Every other error passes unchanged."""
    try:
        yield
    except RuntimeError as e:
        text = str(e).strip()
        first = text.splitlines()[0] if text else ""
        if not _INPUT_MISMATCH.search(first):
            raise
        raise ValueError(f"{fn}: the model cannot take {name} of shape {tuple(shape)}: {first} (give it the "
                         "number of channels and the image size it was built for)") from e


def one_of(fn: str, value, choices: Sequence, name: str):
    """``value`` if it is one of ``choices``, else ``ValueError`` listing them."""
    if value not in choices:
        raise ValueError(f"{fn}: expected {name} to be one of {list(choices)}, got {value!r}")
    return value
