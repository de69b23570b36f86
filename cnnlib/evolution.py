"""Feature evolution during training (Zeiler & Fergus, ECCV 2014, Sec. 4.1 and Fig. 4).

Zeiler and Fergus show, for a few feature maps of each layer, the strongest activation over the training set
projected back to pixel space with the deconvnet, at epochs 1, 2, 5, 10, 20, 30, 40 and 64: the lower
layers settle within a few epochs, the upper ones only after 40-50. :func:`strongest_projections` computes
that figure from a series of snapshots of one network (the map numbered ``c`` is the same map at every
epoch, since training moves it continuously).

"Settled" can also be measured. :func:`linear_cka` compares the activations of a layer at two epochs on the
same images with linear centred kernel alignment (Kornblith et al., ICML 2019): for activations
``X (n, p)`` and ``Y (n, q)`` of ``n`` images, each column centred,

    CKA(X, Y) = ‖Yᵀ X‖²_F / (‖Xᵀ X‖_F · ‖Yᵀ Y‖_F),

a number in [0, 1] that is 1 when one representation is a rotation and rescaling of the other and does not
care how the units are numbered. With the Gram matrices ``K = X Xᵀ`` and ``L = Y Yᵀ`` (``n × n``) the same
number is ``⟨K, L⟩_F / (‖K‖_F · ‖L‖_F)``, the cheaper form when there are fewer images than units.
:func:`layer_similarity` gives it for every layer and epoch against the last epoch. Its baselines:
:func:`initial_model` rebuilds the network at epoch 0 (the initialisation, reproducible from the run's seed) and,
with another seed, an independently initialised network of the same architecture.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from . import checks
from .devices import device as default_device
from .models import ZFNetSmall, activations
from .pretrained import available, load_snapshot
from .progress import hidden
from .snapshots import DATA_DIR, check_made_from, checked_file
from .topk import mine_topk, project_units


def _check_models(fn: str, models) -> None:
    """``{epoch: model}``: a non-empty mapping of int epochs to modules, each with parameters, in eval mode."""
    if not isinstance(models, Mapping) or not models:
        raise TypeError(f"{fn}: expected models as a non-empty {{epoch: model}} dict, got {type(models).__name__}"
                        f"{' (empty)' if isinstance(models, Mapping) else ''}")
    for e, m in models.items():
        checks.positive_int(fn, e, "epoch (a key of models)", 0)
        checks.model_device(fn, m)
        checks.eval_mode(fn, m)


def linear_cka(X: torch.Tensor, Y: torch.Tensor) -> float:
    """Linear centred kernel alignment of two representations of the same ``n`` inputs.

    Args:
        X: ``(n, p)`` (or ``(n, ...)``, flattened), Y: ``(n, q)``; rows are the same inputs.

    Returns:
        CKA in [0, 1]: 1 for representations equal up to rotation and isotropic scaling.
    """
    _check_cka_inputs(X, Y)
    return _cka_of_centred(_centred(X), _centred(Y))


def _check_cka_inputs(X: torch.Tensor, Y: torch.Tensor) -> None:
    for name, A in (("X", X), ("Y", Y)):
        checks.tensor("linear_cka", A, name)
        if A.ndim < 2:
            raise ValueError(f"linear_cka: expected {name} of shape (n, p), got {tuple(A.shape)}")
        checks.finite("linear_cka", checks.floating("linear_cka", A, name), name)
    if X.shape[0] != Y.shape[0] or X.shape[0] < 2:
        raise ValueError(f"linear_cka: expected the same n >= 2 inputs in both, got {X.shape[0]} and {Y.shape[0]}")


def _cka_of_centred(X: torch.Tensor, Y: torch.Tensor, L: torch.Tensor | None = None) -> float:
    """Linear CKA of two centred float64 representations ``(n, p)``, ``(n, q)``: through the ``n × n`` Gram
    matrices when there are fewer inputs than units (``L``: ``Y``'s Gram matrix ``Y Yᵀ`` if already computed),
    else through the ``p × q`` cross-covariance."""
    if X.shape[0] < X.shape[1] + Y.shape[1]:  # fewer images than units: n × n Gram matrices
        return _cka_of_grams(X @ X.T, Y @ Y.T if L is None else L)
    numerator = torch.linalg.matrix_norm(Y.T @ X) ** 2
    denominator = torch.linalg.matrix_norm(X.T @ X) * torch.linalg.matrix_norm(Y.T @ Y)
    if denominator == 0:
        raise ValueError("linear_cka: a representation is constant over the inputs (all columns centred to 0)")
    return float(numerator / denominator)


def _centred(A: torch.Tensor) -> torch.Tensor:
    """``A`` ``(n, ...)`` as float64 ``(n, p)``, each column minus its mean (float64 for the sums of squares; on
    the CPU for MPS, which has no float64)."""
    dev = torch.device("cpu") if A.device.type == "mps" else A.device
    A = A.detach().flatten(1).to(dev).to(torch.float64)
    return A - A.mean(0)


def _cka_of_grams(K: torch.Tensor, L: torch.Tensor) -> float:
    """``⟨K, L⟩_F / (‖K‖_F · ‖L‖_F)`` for the Gram matrices ``(n, n)`` of two centred representations."""
    numerator, denominator = (K * L).sum(), torch.linalg.matrix_norm(K) * torch.linalg.matrix_norm(L)
    if denominator == 0:
        raise ValueError("linear_cka: a representation is constant over the inputs (all columns centred to 0)")
    return float(numerator / denominator)


def initial_model(name: str = "zfnet-small-fashion", seed: int | None = None, device=None) -> nn.Module:
    """The network of a shipped snapshot series before its first training step ("epoch 0"), in eval mode.

    :func:`cnnlib.train.train_snapshots` seeds torch with ``config["seed"]`` and then builds the model, so the
    initial weights are ``torch.manual_seed(seed); ZFNetSmall(**model_kwargs)``, rebuilt here from the config
    saved in the series' first snapshot. Its weights are rounded to float16 and back, as the snapshots are
    stored. The global random state is left as it was.

    Args:
        name: a series of :func:`cnnlib.pretrained.available`.
        seed: ``None`` for the run's own seed (epoch 0 of that run); another value gives an independently
            initialised network of the same architecture (a baseline for CKA).
        device: default :func:`cnnlib.device`.

    Returns:
        ``ZFNetSmall`` in eval mode on ``device``.
    """
    if name not in available():
        raise ValueError(f"initial_model: unknown series {name!r}, expected one of {sorted(available())}")
    snap = load_snapshot(name, available()[name][0])
    if snap["model"] != "ZFNetSmall":
        raise ValueError(f"initial_model: {name} holds a {snap['model']!r}, expected 'ZFNetSmall'")
    seed = int(snap["config"]["seed"]) if seed is None else checks.number("initial_model", seed, "seed")
    if seed != int(seed):
        raise ValueError(f"initial_model: expected an integer seed, got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = ZFNetSmall(**snap["model_kwargs"])
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.half().float())
    return model.to(device or default_device()).eval()


@torch.no_grad()
def layer_similarity(models: Mapping[int, nn.Module], X: torch.Tensor, layers: Sequence[str],
                     reference: int | None = None) -> dict[str, dict[int, float]]:
    """CKA between each layer's activations at every epoch and at the ``reference`` epoch (default: the last).

    Args:
        models: ``{epoch: model}``, snapshots of one network (eval mode).
        X: the images ``(n, C, H, W)`` on which to compare; layers: names for :func:`cnnlib.models.named_layer`.

    Returns:
        ``{layer: {epoch: CKA}}``.
    """
    _check_models("layer_similarity", models)
    layers = checks.layer_list("layer_similarity", layers)
    checks.images("layer_similarity", X)
    reference = max(models) if reference is None else reference
    if reference not in models:
        raise ValueError(f"layer_similarity: reference epoch {reference} is not among {sorted(models)}")
    acts = {e: activations(m, X, layers) for e, m in models.items()}
    out: dict[str, dict[int, float]] = {}
    for layer in layers:
        ref = acts[reference][layer]
        for e in models:
            _check_cka_inputs(acts[e][layer], ref)
        Y = _centred(ref)
        L = Y @ Y.T if len(X) < 2 * Y.shape[1] else None  # the reference's Gram matrix, once for every epoch
        out[layer] = {e: _cka_of_centred(_centred(acts[e][layer]), Y, L) for e in sorted(models)}
    return out


def _channels(fn: str, channels, K: int | None, layer: str) -> list[int]:
    """A non-empty list of feature-map numbers in ``0 .. K − 1``."""
    if isinstance(channels, (str, int)) or not isinstance(channels, Sequence) or not channels:
        raise TypeError(f"{fn}: expected a non-empty list of feature maps for layer {layer!r}, got {channels!r}")
    top = None if K is None else K - 1
    return [checks.positive_int(fn, c, f"feature maps of {layer!r}" + (f" ({K} maps)" if K else ""), 0, top)
            for c in channels]


@dataclass
class Evolution:
    """Fig. 4 for one layer: per epoch, the strongest activation of every feature map over the data, and the
    deconvnet projections of some of the maps."""

    layer: str
    epochs: list[int]
    top_value: torch.Tensor  # (E, K): for every map of the layer, its strongest activation over the data
    top_image: torch.Tensor  # (E, K) int64: the image it is in
    top_position: torch.Tensor  # (E, K, 2) int64: its (row, column) in the feature map
    channels: list[int]  # the M maps projected
    projections: torch.Tensor  # (E, M, C, R, R): cropped to the receptive field
    patches: torch.Tensor  # (E, M, C, R, R): the image patch under each unit

    @property
    def values(self) -> torch.Tensor:
        """``(E, M)``: the strongest activation of each projected map."""
        return self.top_value[:, self.channels]

    @property
    def image_index(self) -> torch.Tensor:
        """``(E, M)``: the image of each projected map's strongest activation."""
        return self.top_image[:, self.channels]


@torch.no_grad()
def follow(models: Mapping[int, nn.Module], X: torch.Tensor, evolution: Evolution,
           channels: Sequence[int]) -> Evolution:
    """The same mined :class:`Evolution` with other feature maps projected: no new pass over ``X``, one
    deconvnet projection per epoch and map (``models`` and ``X`` as they were mined)."""
    _check_models("follow", models)
    if not isinstance(evolution, Evolution):
        raise TypeError(f"follow: expected an Evolution (from strongest_projections), got {type(evolution).__name__}")
    missing = [e for e in evolution.epochs if e not in models]
    if missing:
        raise ValueError(f"follow: the evolution was mined at epochs {evolution.epochs}, models lacks {missing}")
    K = evolution.top_value.shape[1]
    channels = _channels("follow", channels, K, evolution.layer)
    projections, patches = [], []
    for e, epoch in enumerate(evolution.epochs):  # each map's strongest unit at this epoch, one image per map
        recon_patch = [project_units(models[epoch], X, evolution.layer, c, evolution.top_image[e, c: c + 1],
                                     evolution.top_position[e, c: c + 1]) for c in channels]
        projections.append(torch.cat([r for r, _ in recon_patch]))  # (M, C, R, R)
        patches.append(torch.cat([p for _, p in recon_patch]))
    return Evolution(evolution.layer, evolution.epochs, evolution.top_value, evolution.top_image,
                     evolution.top_position, channels, torch.stack(projections), torch.stack(patches))


@torch.no_grad()
def strongest_projections(models: Mapping[int, nn.Module], X: torch.Tensor, channels: Mapping[str, Sequence[int]],
                          batch_size: int = 500, progress: bool = True) -> dict[str, Evolution]:
    """For every snapshot and every layer in ``channels``, the strongest activation of each feature map over the
    images ``X`` ``(N, C, H, W)``, and the listed maps' strongest activations projected to pixels with
    :func:`cnnlib.deconvnet.project` (Fig. 4 of the paper). One pass over ``X`` per snapshot mines all the
    layers at once.

    Args:
        models: ``{epoch: model}``, snapshots of one network in eval mode, on one device.
        X: the images searched.
        channels: ``{layer: [feature maps to project]}``, layers of the convolutional stack.

    Returns:
        ``{layer: Evolution}``, epochs in increasing order.
    """
    _check_models("strongest_projections", models)
    if not isinstance(channels, Mapping) or not channels:
        raise TypeError(f"strongest_projections: expected channels as a non-empty {{layer: [maps]}} dict, got "
                        f"{channels!r}")
    checks.layer_list("strongest_projections", list(channels), "the layers (keys of channels)")
    for layer, maps in channels.items():
        _channels("strongest_projections", maps, None, layer)
    checks.images("strongest_projections", X)
    epochs, layers = sorted(models), list(channels)
    mined: dict[str, list] = {layer: [] for layer in layers}
    for epoch in tqdm(epochs, desc="mining the snapshots", leave=False, disable=hidden(progress)):
        tops = mine_topk(models[epoch], X, layers, k=1, batch_size=batch_size, progress=False)
        for layer in layers:
            mined[layer].append(tops[layer])
    out = {}
    for layer in layers:
        tops = mined[layer]
        top_value = torch.stack([t.values[:, 0] for t in tops])  # (E, K)
        top_image = torch.stack([t.image_index[:, 0] for t in tops])
        top_position = torch.stack([t.position[:, 0] for t in tops])  # (E, K, 2)
        empty = torch.zeros(len(epochs), 0)
        mined_only = Evolution(layer, epochs, top_value, top_image, top_position, [], empty, empty)
        maps = _channels("strongest_projections", channels[layer], top_value.shape[1], layer)
        out[layer] = follow(models, X, mined_only, maps)
    return out


def images_digest(X: torch.Tensor) -> str:
    """sha256 of the bytes of the images ``X`` (contiguous, on the CPU): which images a mining was made on."""
    checks.tensor("images_digest", X, "X")
    return hashlib.sha256(X.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def shipped_mining(X: torch.Tensor | None = None, folder=None) -> dict[str, Evolution]:
    """Chapter 7's mining of the snapshots, shipped by ``scripts/mine_evolution.py`` in
    ``data/evolution/mined.pt``: for every snapshot epoch and every feature map of the five convolutional layers,
    the strongest activation over the images, as :func:`strongest_projections` mines it, and the deconvnet
    projections of the maps the chapter shows (:func:`follow` projects others from the same record).

    Checks the file's sha256, that the snapshots here are those it was mined from (their sha256 in
    ``data/MANIFEST.json``) and, when ``X`` is given, that ``X`` are the images it was mined over
    (:func:`images_digest`).

    Returns:
        ``{layer: Evolution}``: ``top_value`` ``(E, K)`` float32, ``top_image`` ``(E, K)``, ``top_position``
        ``(E, K, 2)`` for every map, and ``projections``, ``patches`` ``(E, M, 1, R, R)`` of the ``M``
        ``channels`` shown.
    """
    fn = "shipped_mining"
    folder = Path(folder or DATA_DIR / "evolution")
    remedy = "re-create it with 'python scripts/mine_evolution.py'"
    path = checked_file(fn, folder, "mined.pt", remedy)
    record = torch.load(path, map_location="cpu", weights_only=True)
    check_made_from(fn, folder, path.name, remedy, folder.parent)
    if X is not None and images_digest(X) != record["images"]["sha256"]:
        raise ValueError(f"{fn}: {path} was mined over other images ({record['images']['what']}, sha256 "
                         f"{record['images']['sha256'][:12]}…), got {tuple(X.shape)} with sha256 "
                         f"{images_digest(X)[:12]}…")
    return {layer: Evolution(layer, list(record["epochs"]), record["top_value"][layer], record["top_image"][layer],
                             record["top_position"][layer], list(record["channels"][layer]),
                             record["projections"][layer], record["patches"][layer]) for layer in record["layers"]}
