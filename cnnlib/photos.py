"""A pool of natural photos that arrives offline, and random crops of it: the course's stand-in for ImageNet.

Zeiler & Fergus mine their top-9 activations over ImageNet's validation images and train on 1.3 M photos.
Neither can be downloaded here, so the natural-image chapters draw from every photograph that comes inside
a package (each checked by eye to be a photo, not a drawing or an abstract pattern):

==========================================  ==========  ===========================================
source                                      licence     what
==========================================  ==========  ===========================================
Debian ``tuxpaint-stamps-default``          GPL-2       246 cut-out photos of objects, 20 categories
                                                        (:func:`cnnlib.data.load_stamps`), on gray;
                                                        its 67 drawings are left out
Debian ``mate-backgrounds`` (``nature/``)   GPL-2+      12 close-up nature photos (flowers, grass,
                                                        a ladybird, rain drops, dunes, wood, storm)
Debian ``plasma-workspace-wallpapers``      GPL-2+      9 landscape/scene photos (lake, boats, jetty,
                                                        cups, leaves, moss, forest path, kite, shore)
scikit-image ``skimage.data``               BSD-3       5 colour photos (astronaut, cat, coffee,
                                                        rocket, chelsea) and 3 textures
==========================================  ==========  ===========================================

Large wallpapers are kept at a shorter side of ``max_side`` pixels; :func:`random_crops` cuts squares of
random size and position out of them (and out of the other images), resized to ``size`` and randomly
flipped, so a handful of big photos yields many different training and mining images.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import checks

#: Debian wallpaper packages: folder and the files in it that are photographs.
MATE_NATURE_DIR = Path("/usr/share/backgrounds/mate/nature")
MATE_NATURE = ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
               "TwoWings", "Wood", "YellowFlower")
PLASMA_DIR = Path("/usr/share/wallpapers")
PLASMA_PHOTOS = ("BytheWater", "ColorfulCups", "EveningGlow", "FallenLeaf", "Grey", "Kite", "OneStandsOut", "Path",
                 "summer_1am")
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "cat")
SKIMAGE_TEXTURES = ("brick", "grass", "gravel")


def wallpaper_files(mate_dir: str | os.PathLike | None = None,
                    plasma_dir: str | os.PathLike | None = None) -> list[Path]:
    """The photographic wallpapers installed on this machine (the largest resolution of each); missing
    packages contribute nothing (``make data`` installs them)."""
    mate = Path(mate_dir or MATE_NATURE_DIR)
    plasma = Path(plasma_dir or PLASMA_DIR)
    files = [mate / f"{name}.jpg" for name in MATE_NATURE if (mate / f"{name}.jpg").is_file()]
    for name in PLASMA_PHOTOS:
        images = sorted((plasma / name / "contents" / "images").glob("*.jpg"))
        if images:  # names are "<width>x<height>.jpg": take the widest
            files.append(max(images, key=lambda f: int(f.stem.split("x")[0]) if f.stem.split("x")[0].isdigit() else 0))
    return files


def _read(path: Path, max_side: int) -> torch.Tensor:
    """An image file as float32 ``(3, H, W)`` in [0, 1], its shorter side at most ``max_side`` pixels."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = max_side / min(im.size)
        if scale < 1:
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
        return torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0


def load_pool(max_side: int = 512, stamps: bool = True, wallpapers: bool = True, skimage: bool = True,
              stamp_size: int = 160) -> list[torch.Tensor]:
    """Every natural photo at hand, as a list of float32 ``(3, H, W)`` tensors in [0, 1] of varying sizes.

    Args:
        max_side: wallpapers are downscaled so their shorter side is at most this many pixels.
        stamps, wallpapers, skimage: which sources to include (see the module's table).
        stamp_size: side of the Tux Paint photos (each object centred on gray).

    Raises ``FileNotFoundError`` if no source is found at all.
    """
    max_side = checks.positive_int("load_pool", max_side, "max_side", 16)
    pool: list[torch.Tensor] = []
    if wallpapers:
        pool += [_read(f, max_side) for f in wallpaper_files()]
    if skimage:
        from .data import load_photo

        pool += [load_photo(name) for name in SKIMAGE_PHOTOS]
        pool += [load_photo(name).expand(3, -1, -1).contiguous() for name in SKIMAGE_TEXTURES]
    if stamps:
        from .data import load_stamps

        try:
            pool += list(load_stamps(size=stamp_size, photos_only=True)[0])
        except FileNotFoundError:
            pass
    if not pool:
        raise FileNotFoundError("load_pool: no photos found: run 'make data' (Debian packages tuxpaint-stamps-default, "
                                "mate-backgrounds, plasma-workspace-wallpapers) or enable skimage=True")
    return pool


def random_crops(pool: list[torch.Tensor], n: int, size: int, seed: int = 0, scale: tuple[float, float] = (0.05, 1.0),
                 flip: bool = True) -> torch.Tensor:
    """``n`` random square crops of the images in ``pool``, each resized to ``size × size``.

    For each crop an image is drawn uniformly, then a square whose area is a uniform fraction in ``scale`` of the
    largest square that fits (its side ``sqrt(u) · min(H, W)``), at a uniform position, resized with antialiasing,
    and mirrored left-right with probability 1/2 when ``flip``.

    Returns:
        float32 ``(n, 3, size, size)`` in [0, 1]; the same ``seed`` gives the same crops.
    """
    n = checks.positive_int("random_crops", n, "n")
    size = checks.positive_int("random_crops", size, "size", 4)
    if not isinstance(pool, (list, tuple)) or not pool:
        raise ValueError(f"random_crops: expected a non-empty list of images (3, H, W), got {type(pool).__name__}")
    for i, img in enumerate(pool):
        checks.images("random_crops", img, ndim=3, channels=3, name=f"pool[{i}]")
    lo, hi = scale
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"random_crops: expected 0 < scale[0] <= scale[1] <= 1, got {scale}")
    gen = torch.Generator().manual_seed(seed)
    out = torch.empty(n, 3, size, size)
    for k in range(n):
        img = pool[int(torch.randint(len(pool), (1,), generator=gen))]
        _, H, W = img.shape
        u = lo + (hi - lo) * float(torch.rand(1, generator=gen))
        side = max(1, round(u ** 0.5 * min(H, W)))
        top = int(torch.randint(H - side + 1, (1,), generator=gen))
        left = int(torch.randint(W - side + 1, (1,), generator=gen))
        crop = img[None, :, top: top + side, left: left + side]
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=side > size, align_corners=False)
        if flip and bool(torch.rand(1, generator=gen) < 0.5):
            crop = crop.flip(-1)
        out[k] = crop[0].clamp(0, 1)
    return out
