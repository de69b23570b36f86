"""Every photo of the course, all offline: scikit-image's photos and textures (:func:`load_photo`), Tux Paint's
cut-out photos of objects (:func:`load_stamps`), Debian's photographic wallpapers, and the pool of all of them with
its random crops (:func:`load_pool`, :func:`photo_pool`, :func:`random_crops`, :func:`seeded_crops`): the course's
stand-in for ImageNet. (Labelled datasets for training, Fashion-MNIST and the digits, are :mod:`cnnlib.data`.)

Zeiler & Fergus mine their top-9 activations over ImageNet's validation images and train on 1.3 M photos.
Neither can be downloaded here, so the natural-image chapters draw from every photograph that comes inside
a package (each checked by eye to be a photo, not a drawing or an abstract pattern):

==========================================  ==========  ===========================================
source                                      licence     what
==========================================  ==========  ===========================================
Debian ``tuxpaint-stamps-default``          GPL-2       246 cut-out photos of objects, 20 categories
                                                        (:func:`load_stamps`), on gray;
                                                        its 67 drawings are left out
Debian ``mate-backgrounds`` (``nature/``)   GPL-2+      12 close-up nature photos (flowers, grass,
                                                        a ladybird, rain drops, dunes, wood, storm)
Debian ``plasma-workspace-wallpapers``      GPL-2+      9 landscape/scene photos (lake, boats, jetty,
                                                        cups, leaves, moss, forest path, kite, shore)
scikit-image ``skimage.data``               BSD-3       5 colour photos (astronaut, cat, coffee,
                                                        rocket, chelsea) and 3 textures
==========================================  ==========  ===========================================

A source asked for must be there whole (:func:`load_pool` names a missing package and the command that installs
it), and every shipped result made from the pool keeps the pool's fingerprint (:func:`pool_fingerprint`: per
source the files, their sizes and sha256), which its loader checks (:func:`check_pool`): a seed then always
gives the crops the result was made from.

Large wallpapers are kept at a shorter side of ``max_side`` pixels; :func:`random_crops` cuts squares of
random size and position out of them (and out of the other images), resized to ``size`` and randomly
flipped, so a handful of big photos yields many different training and mining images.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import subprocess
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data as skdata

from . import checks
from .snapshots import manifest_entries, sha256

# --- scikit-image's photos and textures -------------------------------------------------------------------------

#: scikit-image photos that load offline (colour but ``camera``), and its texture samples (gray).
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "cat", "camera", "hubble_deep_field")
TEXTURES = ("brick", "grass", "gravel")


def load_photo(name: str, size: int | None = None, gray: bool = False) -> torch.Tensor:
    """A photo or texture from scikit-image (shipped with the package, no download).

    Args:
        name: one of ``PHOTOS`` or ``TEXTURES``.
        size: if given, the shorter side is resized to ``size`` pixels (antialiased bilinear).
        gray: return one luminance channel (ITU-R 601: 0.299 R + 0.587 G + 0.114 B).

    Returns:
        float32 ``(C, H, W)`` in [0, 1], ``C`` = 3 for colour photos, 1 for gray ones or ``gray=True``.
    """
    checks.one_of("load_photo", name, PHOTOS + TEXTURES, "name")
    if size is not None:
        size = checks.positive_int("load_photo", size, "size")
    img = np.asarray(getattr(skdata, name)())
    if img.dtype == bool:
        img = img.astype(np.float32)
    elif img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    else:
        img = img.astype(np.float32)
        img = (img - img.min()) / max(float(img.max() - img.min()), 1e-8)
    x = torch.from_numpy(img)
    x = x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1)[:3]  # (C, H, W)
    if gray and x.shape[0] == 3:
        x = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).unsqueeze(0)
    if size is not None:
        h, w = x.shape[1:]
        scale = size / min(h, w)
        new = (max(1, round(h * scale)), max(1, round(w * scale)))
        x = F.interpolate(x[None], size=new, mode="bilinear", antialias=True, align_corners=False)[0]
        x = x.clamp(0, 1)
    return x.contiguous()


# --- Tux Paint's stamps -----------------------------------------------------------------------------------------

#: Debian's ``tuxpaint-stamps-default``: cut-out photos on transparent backgrounds, filed by category.
TUXPAINT_STAMPS_DIR = Path("/usr/share/tuxpaint/stamps")
#: Its categories that hold photographs (others hold letters, coins, road signs, drawings).
STAMP_CATEGORIES = (
    "animals/mammals", "animals/birds", "animals/insects", "animals/fish", "food/fruit", "food/vegetables",
    "food/nuts", "plants/flowers", "plants/trees", "vehicles/locomotive", "vehicles/ship", "vehicles/construction",
    "vehicles/flight", "vehicles/auto", "vehicles/emergency", "household/tools", "household/dishes", "hobbies/music",
    "space/planets", "town/monuments",
)
#: Stamps that are drawings, not photographs (checked by eye on contact sheets): every ``cartoon/`` folder and
#: these files. ``load_stamps(photos_only=True)`` leaves them out (246 of the 313 stamps remain).
STAMP_DRAWINGS = (
    "vehicles/emergency/sedan_police.png", "vehicles/emergency/sedan_police_mirror.png",
    "town/monuments/inukshuk-outline.png", "space/planets/0_sun.png", "animals/mammals/hedgehog.png",
    "animals/insects/bee.png", "household/dishes/glass.png", "household/dishes/mug.png",
    "animals/mammals/echidna.png",
)


def is_stamp_drawing(relative_path: str) -> bool:
    """Whether a stamp (its path under the stamps folder, ``"group/category/…/name.png"``) is a drawing."""
    path = str(relative_path).replace(os.sep, "/")
    return "/cartoon/" in f"/{path}" or path in STAMP_DRAWINGS


def load_stamps(size: int = 112, categories: tuple[str, ...] = STAMP_CATEGORIES, root=None, background: float = 0.5,
                photos_only: bool = False, min_per_class: int = 1):
    """Photos of objects from Debian's ``tuxpaint-stamps-default`` (313 photos in 20 default categories).

    Each RGBA cut-out is scaled so that its longer side is ``size`` pixels, composited over a uniform
    ``background`` gray and centred on a ``size × size`` canvas — one object per image, as in ImageNet.

    Args:
        size: side of the returned images.
        categories: sub-folders ``"group/category"`` to read; the class of an image is its category.
        root: default ``$CNNLIB_TUXPAINT_STAMPS`` or ``/usr/share/tuxpaint/stamps``
            (``apt-get install tuxpaint-stamps-default``, or ``make data``).
        photos_only: leave out the stamps that are drawings (:func:`is_stamp_drawing`).
        min_per_class: keep only the categories with at least this many images (chapter 8 takes 11: 2, 5 or
            10 to train on and at least one to test), labelled ``0 … k − 1`` in the order of ``categories``.

    Returns:
        ``(X, y, classes)``: ``X`` float32 ``(N, 3, size, size)`` in [0, 1], ``y`` int64 ``(N,)``, class names.
    """
    size = checks.positive_int("load_stamps", size, "size")
    min_per_class = checks.positive_int("load_stamps", min_per_class, "min_per_class")
    background = checks.number("load_stamps", background, "background", 0, 1)
    if isinstance(categories, str) or not categories:
        raise TypeError(f"load_stamps: expected categories as a non-empty list of 'group/category' names, got "
                        f"{categories!r}")
    folder = Path(root or os.environ.get("CNNLIB_TUXPAINT_STAMPS") or TUXPAINT_STAMPS_DIR)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"load_stamps: tuxpaint stamps not found in {folder}: on Debian/Ubuntu run 'sudo apt-get install "
            "tuxpaint-stamps-default' (or 'make data'), or set CNNLIB_TUXPAINT_STAMPS to a folder of "
            "<group>/<category>/*.png"
        )
    unknown = [c for c in categories if not (folder / c).is_dir()]
    if unknown:
        raise ValueError(f"load_stamps: no such categories in {folder}: {unknown}")
    images, labels = [], []
    for label, cat in enumerate(categories):
        for f in sorted((folder / cat).rglob("*.png")):
            if photos_only and is_stamp_drawing(f.relative_to(folder).as_posix()):
                continue
            with Image.open(f) as im:
                im = im.convert("RGBA")
                scale = size / max(im.size)
                im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.LANCZOS)
                canvas = Image.new("RGBA", (size, size), (round(255 * background),) * 3 + (255,))
                canvas.alpha_composite(im, ((size - im.width) // 2, (size - im.height) // 2))
                images.append(np.asarray(canvas.convert("RGB"), dtype=np.uint8))
                labels.append(label)
    y = torch.tensor(labels)
    keep = [c for c in range(len(categories)) if int((y == c).sum()) >= min_per_class]
    if not keep:
        raise ValueError(f"load_stamps: no category has {min_per_class} images")
    chosen = [i for i, label in enumerate(labels) if label in keep]
    X = torch.from_numpy(np.stack([images[i] for i in chosen])).permute(0, 3, 1, 2).float() / 255.0
    y = torch.tensor([keep.index(labels[i]) for i in chosen])
    return X.contiguous(), y, [categories[c].split("/")[-1] for c in keep]


# --- the wallpapers, the pool's packages and its fingerprint ----------------------------------------------------

#: Debian wallpaper packages: folder and the files in it that are photographs.
MATE_NATURE_DIR = Path("/usr/share/backgrounds/mate/nature")
MATE_NATURE = ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
               "TwoWings", "Wood", "YellowFlower")
PLASMA_DIR = Path("/usr/share/wallpapers")
PLASMA_PHOTOS = ("BytheWater", "ColorfulCups", "EveningGlow", "FallenLeaf", "Grey", "Kite", "OneStandsOut", "Path",
                 "summer_1am")
#: The photos of :data:`PHOTOS` in the pool (with the :data:`TEXTURES`).
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "cat")


#: The Debian packages of the pool: the environment variable that points at another copy of the package's
#: folder (e.g. for a machine without apt), and the folder the package installs.
PACKAGES = {
    "tuxpaint-stamps-default": ("CNNLIB_TUXPAINT_STAMPS", TUXPAINT_STAMPS_DIR),
    "mate-backgrounds": ("CNNLIB_MATE_NATURE", MATE_NATURE_DIR),
    "plasma-workspace-wallpapers": ("CNNLIB_PLASMA_WALLPAPERS", PLASMA_DIR),
}
#: What the fingerprint holds of scikit-image: the pool's photos and textures, and chapter 5b's text image.
_SKIMAGE_FINGERPRINT = SKIMAGE_PHOTOS + TEXTURES + ("text",)


def package_files(package: str) -> list[Path]:
    """The files of a package in :data:`PACKAGES` that the pool reads, in the pool's order; an empty list when the
    package is not installed. Folder: ``$CNNLIB_…`` (see :data:`PACKAGES`) or the package's own.

    ``tuxpaint-stamps-default``: every PNG of :data:`STAMP_CATEGORIES` (drawings too: chapter 8 reads
    them); ``mate-backgrounds``: the 12 photos of :data:`MATE_NATURE`; ``plasma-workspace-wallpapers``: the largest
    resolution of each of the 9 :data:`PLASMA_PHOTOS`.
    """
    checks.one_of("package_files", package, tuple(PACKAGES), "package")
    var, default = PACKAGES[package]
    folder = Path(os.environ.get(var) or default)
    if package == "tuxpaint-stamps-default":
        return [f for c in STAMP_CATEGORIES if (folder / c).is_dir() for f in sorted((folder / c).rglob("*.png"))]
    if package == "mate-backgrounds":
        return [folder / f"{name}.jpg" for name in MATE_NATURE if (folder / f"{name}.jpg").is_file()]
    files = []
    for name in PLASMA_PHOTOS:
        images = sorted((folder / name / "contents" / "images").glob("*.jpg"))
        if images:  # names are "<width>x<height>.jpg": take the widest
            files.append(max(images, key=lambda f: int(f.stem.split("x")[0]) if f.stem.split("x")[0].isdigit() else 0))
    return files


def _missing(fn: str, package: str, have: int, want: int | None = None, why: str = "") -> FileNotFoundError:
    """The error for a pool package that is not (fully) installed: which package, ``why`` it matters, and how to
    install it."""
    var, default = PACKAGES[package]
    folder = os.environ.get(var) or default
    count = f"{have} of its {want} files" if want is not None else f"{have} files"
    return FileNotFoundError(
        f"{fn}: the photo pool lacks Debian's {package} ({count} in {folder}){why}. Install it: "
        f"'sudo apt-get install {package}' (or 'make data'), or set {var} to a folder holding its files "
        "(README, Data).")


def _file_sha256(path: Path) -> str:
    """sha256 of a file, remembered per path, size and modification time (a session checks the pool often)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256(path)
    return _SHA_CACHE[key]


_SHA_CACHE: dict[tuple, str] = {}


def _version(package: str) -> str | None:
    """The installed version of a Debian package (``dpkg-query``), or None where there is no dpkg."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def pool_fingerprint(sources=("tuxpaint-stamps-default", "mate-backgrounds", "plasma-workspace-wallpapers",
                              "scikit-image")) -> dict[str, dict]:
    """What the photo pool is made of on this machine, per source: ``{"files": n, "bytes": total size,
    "sha256": digest, "version": installed version}``.

    A Debian package's digest is the sha256 of the lines ``"<path in its folder>\\t<bytes>\\t<sha256>\\n"`` of
    :func:`package_files`; scikit-image's is over the name, dtype and shape of each image it gives the pool (and
    the text image of :func:`photo_pool`): not its pixels, which the local JPEG decoder may round
    differently. Two pools with the same digests hold the same photos in the same sizes, so a seed of
    :func:`random_crops` cuts the same crops. A shipped result made from the pool keeps
    this record in its manifest; :func:`check_pool` compares it with the pool at hand.
    """
    if isinstance(sources, str) or not all(s in (*PACKAGES, "scikit-image") for s in sources):
        raise ValueError(f"pool_fingerprint: expected sources among {[*PACKAGES, 'scikit-image']}, got {sources!r}")
    out = {}
    for source in sources:
        lines, total = [], 0
        if source == "scikit-image":
            for name in _SKIMAGE_FINGERPRINT:
                a = np.ascontiguousarray(getattr(skdata, name)())
                lines.append(f"{name}\t{a.dtype}\t{a.shape}\n")
                total += a.nbytes
            version = importlib.metadata.version("scikit-image")
        else:
            var, default = PACKAGES[source]
            folder = Path(os.environ.get(var) or default)
            for f in package_files(source):
                size = f.stat().st_size
                lines.append(f"{f.relative_to(folder).as_posix()}\t{size}\t{_file_sha256(f)}\n")
                total += size
            version = _version(source) if lines else None
        out[source] = {"files": len(lines), "bytes": total,
                       "sha256": hashlib.sha256("".join(lines).encode()).hexdigest(), "version": version}
    return out


def check_pool(fn: str, recorded: dict, what: str, remedy: str) -> None:
    """Raise unless this machine's photo pool is the one ``what`` was made from.

    ``recorded``: the :func:`pool_fingerprint` stored with the shipped result. A source with fewer files here
    (a package not installed, or hidden) gives ``FileNotFoundError`` naming the package and the command that
    installs it; other files (another version) give ``ValueError`` naming both versions and ``remedy`` (how to
    re-create the result from this pool). Errors start with ``fn``.
    """
    if not isinstance(recorded, dict) or not recorded or not all(
            isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in recorded.values()):
        raise ValueError(f"{fn}: {what} records no photo-pool fingerprint (expected {{source: {{'files', 'bytes', "
                         f"'sha256'}}}}, got {recorded!r}); {remedy}")
    here = pool_fingerprint(tuple(recorded))
    for source, want in recorded.items():
        got = here[source]
        if got["sha256"] == want["sha256"]:
            continue
        if source != "scikit-image" and got["files"] < want["files"]:
            raise _missing(fn, source, got["files"], want["files"], f"; {what} was made from the pool with all of "
                           "them, and would index crops of another pool")
        raise ValueError(
            f"{fn}: {what} was made from other {source} photos: {want['files']} files, {want['bytes']:,} bytes, "
            f"sha256 {want['sha256'][:12]}… (version {want.get('version')}); here {got['files']} files, "
            f"{got['bytes']:,} bytes, sha256 {got['sha256'][:12]}… (version {got['version']}). Install version "
            f"{want.get('version')} of {source}, or {remedy}")


def _read(path: Path, max_side: int) -> torch.Tensor:
    """An image file as float32 ``(3, H, W)`` in [0, 1], its shorter side at most ``max_side`` pixels."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = max_side / min(im.size)
        if scale < 1:
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
        return torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0


def check_shipped(fn: str, folder: str | os.PathLike, rel: str, what: str, remedy: str) -> None:
    """:func:`check_pool` against the fingerprint that ``folder/MANIFEST.json`` keeps for ``rel`` (its ``"pool"``,
    written by :func:`cnnlib.snapshots.record_in_manifest`)."""
    entry = manifest_entries(fn, folder, remedy).get(rel, {})
    check_pool(fn, entry.get("pool"), what, remedy)


# --- the pool and its crops ------------------------------------------------------------------------------------

def load_pool(max_side: int = 512, stamps: bool = True, wallpapers: bool = True, skimage: bool = True,
              stamp_size: int = 160) -> list[torch.Tensor]:
    """Every natural photo at hand, as a list of float32 ``(3, H, W)`` tensors in [0, 1] of varying sizes.

    Args:
        max_side: wallpapers are downscaled so their shorter side is at most this many pixels.
        stamps, wallpapers, skimage: which sources to include (see the module's table).
        stamp_size: side of the Tux Paint photos (each object centred on gray).

    A source asked for must be there whole: a package that is not installed raises ``FileNotFoundError``
    naming it and the command that installs it (a smaller pool would silently give other crops for a seed).
    """
    max_side = checks.positive_int("load_pool", max_side, "max_side", 16)
    pool: list[torch.Tensor] = []
    if wallpapers:
        for package, names in (("mate-backgrounds", MATE_NATURE), ("plasma-workspace-wallpapers", PLASMA_PHOTOS)):
            files = package_files(package)
            if len(files) < len(names):
                raise _missing("load_pool", package, len(files), len(names))
            pool += [_read(f, max_side) for f in files]
    if skimage:
        pool += [load_photo(name) for name in SKIMAGE_PHOTOS]
        pool += [load_photo(name).expand(3, -1, -1).contiguous() for name in TEXTURES]
    if stamps:
        if not package_files("tuxpaint-stamps-default"):
            raise _missing("load_pool", "tuxpaint-stamps-default", 0)
        pool += list(load_stamps(size=stamp_size, photos_only=True)[0])
    if not pool:
        raise ValueError("load_pool: expected at least one of stamps, wallpapers, skimage to be True")
    return pool


def photo_pool() -> list[torch.Tensor]:
    """The photos Fig. 2 is mined over: :func:`load_pool` plus scikit-image's text image
    (black print on white, for the texture-and-text units Zeiler & Fergus show at layer 3)."""
    text = torch.from_numpy(np.asarray(skdata.text(), dtype=np.float32) / 255.0)  # (172, 448), offline
    return load_pool() + [text.expand(3, -1, -1).contiguous()]


def random_crops(pool: list[torch.Tensor], n: int, size: int, seed: int = 0, scale: tuple[float, float] = (0.05, 1.0),
                 flip: bool = True, return_sources: bool = False):
    """``n`` random square crops of the images in ``pool``, each resized to ``size × size``.

    For each crop an image is drawn uniformly, then a square whose area is a uniform fraction in ``scale`` of the
    largest square that fits (its side ``sqrt(u) · min(H, W)``), at a uniform position, resized with antialiasing,
    and mirrored left-right with probability 1/2 when ``flip``.

    Returns:
        float32 ``(n, 3, size, size)`` in [0, 1]; the same ``seed`` gives the same crops. With
        ``return_sources=True`` a pair ``(crops, sources)``: ``sources`` int64 ``(n,)``, the index in ``pool`` of
        the image each crop was cut from (map it through :func:`source_ids` to tell duplicate photos apart).
    """
    n = checks.positive_int("random_crops", n, "n")
    size = checks.positive_int("random_crops", size, "size", 4)
    check_images("random_crops", pool)
    lo, hi = scale
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"random_crops: expected 0 < scale[0] <= scale[1] <= 1, got {scale}")
    out, sources = _cut(pool, n, size, seed, lo, hi, flip)
    return (out, sources) if return_sources else out


def check_images(fn: str, pool) -> None:
    """Raise unless ``pool`` is a non-empty list of finite float images ``(3, H, W)`` (errors start with ``fn``)."""
    if not isinstance(pool, (list, tuple)) or not pool:
        raise ValueError(f"{fn}: expected a non-empty list of images (3, H, W), got {type(pool).__name__}")
    for i, img in enumerate(pool):
        checks.images(fn, img, ndim=3, channels=3, name=f"pool[{i}]")


def _cut(pool: list[torch.Tensor], n: int, size: int, seed: int, lo: float, hi: float,
         flip: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`random_crops` after its checks: the crops ``(n, 3, size, size)`` and their pool indices ``(n,)``."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.empty(n, 3, size, size)
    sources = torch.empty(n, dtype=torch.int64)
    for k in range(n):
        sources[k] = _draw_source(gen, len(pool))
        img = pool[int(sources[k])]
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
    return out, sources


def _draw_source(gen: torch.Generator, pool_size: int) -> int:
    """A crop's first draw: the index of the image it is cut from, uniform over ``pool_size`` images (shared by
    :func:`_cut` and :func:`seeded_sources`, which knows a crop's source without cutting it)."""
    return int(torch.randint(pool_size, (1,), generator=gen))


def seeded_crops(pool: list[torch.Tensor], indices, seed: int, size: int = 224, return_sources: bool = False):
    """Crops number ``indices`` of an endless sequence: crop ``i`` is ``random_crops(pool, 1, size, seed + i)``,
    so any crop can be made again alone. Returns float32 ``(len(indices), 3, size, size)`` in [0, 1]; with
    ``return_sources=True`` also the index in ``pool`` of each crop's image, int64 ``(len(indices),)``
    (:func:`seeded_sources` gives it without cutting the crops)."""
    check_images("seeded_crops", pool)  # once, not once per crop
    size = checks.positive_int("seeded_crops", size, "size", 4)
    made = [_cut(pool, 1, size, seed + int(i), 0.05, 1.0, True) for i in indices]  # random_crops' defaults
    crops = torch.cat([c for c, _ in made])
    return (crops, torch.cat([s for _, s in made])) if return_sources else crops


def seeded_sources(pool_size: int, indices, seed: int) -> torch.Tensor:
    """The pool index of each of the crops ``indices`` of :func:`seeded_crops`, without cutting them: the first
    draw of crop ``i``'s generator (seeded ``seed + i``), uniform over ``pool_size`` images. int64
    ``(len(indices),)``; map it through :func:`source_ids` to count one photo once."""
    pool_size = checks.positive_int("seeded_sources", pool_size, "pool_size", 1)
    out = torch.empty(len(indices), dtype=torch.int64)
    for n, i in enumerate(indices):
        out[n] = _draw_source(torch.Generator().manual_seed(seed + int(i)), pool_size)
    return out


def source_ids(pool: list[torch.Tensor]) -> torch.Tensor:
    """The photo each image of ``pool`` is: int64 ``(len(pool),)``, entry ``i`` the index of the first image of
    ``pool`` with the same pixels as ``pool[i]`` (so ``i`` itself unless it repeats an earlier image).

    The pool holds one photo twice (scikit-image's ``cat`` is ``chelsea``); mining that keeps one patch per
    photo (:func:`cnnlib.topk.mine_topk` with ``groups=``) must count those as one source. Crops of ``pool``
    with pool indices ``s`` (:func:`random_crops` with ``return_sources=True``) come from photos
    ``source_ids(pool)[s]``.
    """
    check_images("source_ids", pool)
    ids, seen = [], {}  # seen: (shape, digest of the pixels) -> indices of the distinct images with them
    for i, img in enumerate(pool):
        key = (tuple(img.shape), hashlib.sha1(img.contiguous().numpy().tobytes()).hexdigest())
        same = seen.setdefault(key, [])
        first = next((j for j in same if torch.equal(pool[j], img)), None)
        if first is None:
            same.append(i)
        ids.append(i if first is None else first)
    return torch.tensor(ids, dtype=torch.int64)
