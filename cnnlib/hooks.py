"""Keeping what a layer (found by name, :func:`cnnlib.graph.named_layer`) outputs during a forward pass: the
one forward hook of the library that keeps outputs (``models.layer_shapes`` only reads their shapes).

A forward hook receives the layer's output tensor itself. If the next module is ``ReLU(inplace=True)`` (as in
torchvision's AlexNet and VGG), that very tensor is overwritten a moment later, so a hook that keeps a
reference returns the *rectified* values (all ≥ 0) — silently. :class:`LayerOutputs` keeps a copy instead,
checks that every requested layer ran, and removes its hooks when the ``with`` block ends, whatever happens.

    with LayerOutputs(model, ["conv1", "conv5"], fn="mine_topk") as out:
        model(x)
        a = out["conv5"]            # (N, K, h, w), a copy taken when conv5 ran
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from . import checks
from .graph import named_layer


class LayerOutputs:
    """Context manager: copies of the outputs of the named ``layers`` of ``model`` from the latest forward pass.

    Args:
        model: any module; layers: names as accepted by :func:`named_layer`.
        fn: the public function on whose behalf the outputs are kept (named in error messages).
        detach: keep detached copies (default); ``False`` keeps copies that stay in the autograd graph
            (activation maximization back-propagates through them).
        reduce: keep ``reduce(output)`` instead of a copy, computed in the hook — before a following in-place
            layer can change the output — e.g. each map's maximum for top-k mining, a few numbers instead of a
            copy of the whole maps. It must return new tensors (a reduction does), not views of the output.

    A module called several times in one pass (e.g. a ReLU reused in a ResNet block) keeps its last output.
    Reading a layer that did not run in the last forward pass raises ``ValueError``.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], fn: str = "LayerOutputs", detach: bool = True,
                 reduce=None):
        self.fn, self.detach, self.reduce = fn, detach, reduce
        self.layers = checks.layer_list(fn, layers)
        self.modules = {}
        for name in self.layers:
            self.modules[name] = named_layer(model, name, fn)
        self.outputs: dict[str, object] = {}  # copies, or what reduce made of them
        self._handles: list = []

    def _keep(self, name: str, output) -> None:
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"{self.fn}: layer {name!r} returns {type(output).__name__}, expected a tensor")
        if self.reduce is not None:
            self.outputs[name] = self.reduce(output.detach() if self.detach else output)
        else:
            self.outputs[name] = output.detach().clone() if self.detach else output.clone()

    def __enter__(self) -> LayerOutputs:
        try:
            for name, mod in self.modules.items():
                self._handles.append(mod.register_forward_hook(lambda m, i, o, name=name: self._keep(name, o)))
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove every hook (called on leaving the ``with`` block)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def clear(self) -> None:
        """Forget the kept outputs (before the next forward pass, so that a layer that stops running is noticed)."""
        self.outputs.clear()

    def __getitem__(self, name: str):
        if name not in self.outputs:
            if name not in self.modules:
                raise KeyError(f"{self.fn}: {name!r} is not one of the kept layers {self.layers}")
            raise ValueError(f"{self.fn}: layer {name!r} was not reached in the forward pass "
                             "(it is not used by the model's forward, or the pass stopped before it)")
        return self.outputs[name]
