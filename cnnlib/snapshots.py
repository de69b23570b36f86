"""The course's own weight files: snapshots of a training run, checked by sha256 when they are read.

A snapshot series lives in one folder (default ``data/``)::

    data/MANIFEST.json                       {"<name>/epoch-064.pt": {"sha256": ..., "bytes": ...}, ...}
    data/<name>/epoch-064.pt                 {"name", "epoch", "config", "model", "model_kwargs",
                                              "test_acc", "test_loss", "state_dict" (float16)}
    data/<name>/history.json                 {"train_loss": [...], "train_acc": [...], "test_loss": [...],
                                              "test_acc": [...]}

:func:`cnnlib.train.train_snapshots` writes them (:func:`save`, :func:`write_manifest`); :func:`load_snapshot`
and :func:`read_history` read them back, refusing a file whose sha256 is not the manifest's (corrupted, truncated,
edited) and a manifest or history that is not what it should be. :func:`cnnlib.pretrained.load` builds the network.

Every other file shipped under ``data/`` (the RBM stack, the photo networks, the mined top-k, chapter 8's table,
chapter 9's renders, chapter 10's networks and results) lives here too: one data root, :data:`DATA_DIR`
(``$CNNLIB_DATA`` overrides it), one writer of every ``MANIFEST.json`` (:func:`record_in_manifest`, and
:func:`record_all` for a whole folder) and one reader (:func:`manifest_entries`, behind :func:`checked_file`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from pathlib import Path

import torch

from . import checks

#: The folder holding the snapshots and MANIFEST.json: ``$CNNLIB_DATA`` or the repository's ``data/``.
DATA_DIR = Path(os.environ.get("CNNLIB_DATA") or Path(__file__).resolve().parent.parent / "data")

_ENTRY = re.compile(r"^([A-Za-z0-9_.-]+)/epoch-(\d{3})\.pt$")
_SNAPSHOT_KEYS = ("name", "epoch", "config", "model", "model_kwargs", "test_acc", "state_dict")
_HISTORY_KEYS = ("train_loss", "train_acc", "test_loss", "test_acc")


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def snapshot_path(out_dir: str | os.PathLike, name: str, epoch: int) -> Path:
    """Where the snapshot of ``name`` at ``epoch`` lives: ``out_dir/name/epoch-064.pt``."""
    return Path(out_dir) / name / f"epoch-{epoch:03d}.pt"


def save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file, then rename: an interrupted write never leaves half a file."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def write_manifest(data_dir: str | os.PathLike = DATA_DIR) -> Path:
    """Write ``data_dir/MANIFEST.json`` anew with :func:`record_in_manifest`: sha256 and size of every
    ``*/epoch-NNN.pt`` snapshot under ``data_dir`` (and nothing else)."""
    return record_all(data_dir, "*/epoch-*.pt")


def record_all(folder: str | os.PathLike, *patterns: str, keep_others: bool = False) -> Path:
    """Write ``folder/MANIFEST.json`` anew, one :func:`record_in_manifest` entry per file matching ``patterns``
    (globs under ``folder``). It then lists exactly those files; with ``keep_others``, the entries of other files
    still in the folder stay as they were (another script wrote them, with its own extra fields), and entries of
    files no longer there go."""
    folder = Path(folder)
    manifest_path = folder / "MANIFEST.json"
    kept = {}
    if keep_others and manifest_path.exists():
        kept = {rel: entry for rel, entry in manifest_entries("record_all", folder, "remove it to start anew").items()
                if (folder / rel).exists()}
    manifest_path.unlink(missing_ok=True)
    if kept:
        _write_manifest(manifest_path, kept)
    for path in sorted({p for pattern in patterns for p in folder.glob(pattern)}):
        record_in_manifest(folder, path.relative_to(folder).as_posix())
    return manifest_path


def manifest_entries(fn: str, folder: str | os.PathLike, remedy: str) -> dict[str, dict]:
    """``folder/MANIFEST.json`` read: ``{"<rel>": {"sha256": ..., "bytes": ..., <extra>}}``, the one place that
    parses a manifest (:func:`checked_file`, :func:`read_manifest`). Raises ``FileNotFoundError`` if it is missing
    and ``ValueError`` if it is not a JSON object of objects; both name ``fn`` and ``remedy`` (how to re-create it)."""
    path = Path(folder) / "MANIFEST.json"
    if not path.exists():
        raise FileNotFoundError(f"{fn}: {path} is missing: the shipped files cannot be checked ({remedy})")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{fn}: {path} is corrupted (not JSON: {e}); restore it with 'git checkout -- {path}'") \
            from None
    if not isinstance(manifest, dict) or not all(isinstance(v, dict) for v in manifest.values()):
        raise ValueError(f"{fn}: {path} is corrupted: expected a JSON object of {{\"<file>\": {{\"sha256\": ...}}}}, "
                         f"got {type(manifest).__name__}")
    return manifest


def read_manifest(data_dir: str | os.PathLike | None = None, fn: str = "read_manifest") -> dict[str, dict]:
    """``data_dir/MANIFEST.json`` checked: ``{"<name>/epoch-NNN.pt": {"sha256": 64 hex digits, "bytes": int}}``.

    Raises ``FileNotFoundError`` if it is missing and ``ValueError`` (naming ``fn``) if it is not such a mapping.
    """
    path = Path(data_dir or DATA_DIR) / "MANIFEST.json"
    manifest = manifest_entries(fn, path.parent, "run 'make snapshots'")
    for rel, entry in manifest.items():
        ok = (_ENTRY.match(rel) and isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
              and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]) and isinstance(entry.get("bytes"), int))
        if not ok:
            raise ValueError(f"{fn}: {path} is corrupted: expected entries \"<name>/epoch-NNN.pt\": "
                             f"{{\"sha256\": <64 hex digits>, \"bytes\": <int>}}, got {rel!r}: {entry!r}")
    return manifest


def checked_file(fn: str, folder: str | os.PathLike, rel: str, remedy: str) -> Path:
    """``folder/rel`` after checking it against the sha256 in ``folder/MANIFEST.json``
    (``{"<rel>": {"sha256": ..., ...}}``), for the shipped results that keep a manifest of their own
    (``data/sae``, ``data/actmax``, ...). ``remedy`` says how to re-create the file. Clear errors name ``fn``."""
    folder = Path(folder)
    manifest_path = folder / "MANIFEST.json"
    manifest = manifest_entries(fn, folder, remedy)
    entry = manifest.get(rel)
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        known = sorted(manifest)
        raise ValueError(f"{fn}: {rel!r} is not in {manifest_path}: expected one of {known}")
    path = folder / rel
    if not path.exists():
        raise FileNotFoundError(f"{fn}: {path} is missing ({remedy})")
    got = sha256(path)
    if got != entry["sha256"]:
        raise ValueError(f"{fn}: {path} is corrupted or truncated: it does not match {manifest_path} (sha256 "
                         f"{got[:12]}…, {path.stat().st_size} bytes; the manifest says {entry['sha256'][:12]}…, "
                         f"{entry.get('bytes')} bytes); restore it with 'git checkout -- {path}' or {remedy}")
    return path


def record_in_manifest(folder: str | os.PathLike, rel: str, **extra) -> Path:
    """Write ``folder/rel``'s entry of ``folder/MANIFEST.json`` (the manifests :func:`checked_file` reads): its
    sha256, its size in bytes and ``extra`` (e.g. ``pool=``, the photo pool's fingerprint). Other entries stay.
    The one writer of every ``MANIFEST.json`` under ``data/``."""
    folder = Path(folder)
    path, manifest_path = folder / rel, folder / "MANIFEST.json"
    sums = manifest_entries("record_in_manifest", folder, "remove it to start anew") if manifest_path.exists() else {}
    sums[rel] = {"sha256": sha256(path), "bytes": path.stat().st_size, **extra}
    return _write_manifest(manifest_path, sums)


def _write_manifest(manifest_path: Path, sums: dict) -> Path:
    tmp = manifest_path.with_suffix(".tmp")  # then rename: an interrupted write never leaves half a manifest
    tmp.write_text(json.dumps(dict(sorted(sums.items())), indent=1) + "\n")
    os.replace(tmp, manifest_path)
    return manifest_path


def available(data_dir: str | os.PathLike | None = None) -> dict[str, list[int]]:
    """The shipped networks and their snapshot epochs, e.g. ``{"zfnet-small-fashion": [1, 2, 5, ...]}``."""
    out: dict[str, list[int]] = {}
    for rel in read_manifest(data_dir, "available"):
        name, epoch = _ENTRY.match(rel).groups()
        out.setdefault(name, []).append(int(epoch))
    return {k: sorted(v) for k, v in sorted(out.items())}


def _network(fn: str, name, data_dir: Path) -> list[int]:
    """The epochs of network ``name`` in ``data_dir``'s manifest, or a clear error."""
    if not isinstance(name, str):
        raise TypeError(f"{fn}: expected name to be a string, got {name!r} ({type(name).__name__})")
    shipped = {}
    for rel in read_manifest(data_dir, fn):
        n, e = _ENTRY.match(rel).groups()
        shipped.setdefault(n, []).append(int(e))
    if name not in shipped:
        raise ValueError(f"{fn}: unknown network {name!r}: expected one of {sorted(shipped)}")
    return sorted(shipped[name])


def made_from(name: str, epochs: list[int] | None = None, data_dir: str | os.PathLike | None = None,
              fn: str = "made_from") -> dict[str, str]:
    """``{"<name>/epoch-NNN.pt": sha256}`` of network ``name``'s snapshots at ``epochs`` (default: all) as the
    manifest records them: what a result computed from them keeps, for :func:`check_made_from`."""
    data_dir = Path(data_dir or DATA_DIR)
    shipped = _network(fn, name, data_dir)
    missing = [e for e in (epochs or []) if e not in shipped]
    if missing:
        raise ValueError(f"{fn}: {name} has no snapshot at epochs {missing}: expected some of {shipped}")
    manifest = read_manifest(data_dir, fn)
    return {f"{name}/epoch-{e:03d}.pt": manifest[f"{name}/epoch-{e:03d}.pt"]["sha256"]
            for e in (shipped if epochs is None else epochs)}


def check_made_from(fn: str, folder: str | os.PathLike, rel: str, remedy: str,
                    data_dir: str | os.PathLike | None = None) -> None:
    """Refuse the shipped result ``folder/rel`` (a ``ValueError`` naming ``fn`` and saying how to re-create it)
    unless its entry in ``folder/MANIFEST.json`` records the snapshots it was made from (``"snapshots"``, as
    :func:`made_from` gives them, written with :func:`record_in_manifest`) and they are the ones in ``data_dir``.
    Every shipped result computed from a ZFNet-small snapshot is checked this way (chapters 7, 8, 9 and 10)."""
    path = Path(folder) / rel
    recorded = manifest_entries(fn, folder, remedy).get(rel, {}).get("snapshots")
    if not isinstance(recorded, dict) or not recorded:
        raise ValueError(f"{fn}: {path} does not record the snapshots it was made from; {remedy}")
    here = read_manifest(data_dir, fn)
    changed = sorted(r for r, sha in recorded.items() if here.get(r, {}).get("sha256") != sha)
    if changed:
        raise ValueError(f"{fn}: {path} was made from other snapshots than those here ({', '.join(changed)}); "
                         f"{remedy}")


def load_snapshot(name: str = "zfnet-small-fashion", epoch: int | None = None,
                  data_dir: str | os.PathLike | None = None, fn: str = "load_snapshot") -> dict:
    """The checked snapshot dictionary (config, epoch, test accuracy, float16 state dict) of ``name`` at ``epoch``
    (default: the last one), read only if its sha256 is the manifest's (errors name ``fn``)."""
    data_dir = Path(data_dir or DATA_DIR)
    epochs = _network(fn, name, data_dir)
    if epoch is None:
        epoch = epochs[-1]
    epoch = checks.positive_int(fn, epoch, "epoch")
    if epoch not in epochs:
        raise ValueError(f"{fn}: {name} has no snapshot at epoch {epoch}: expected one of {epochs}")
    path = checked_file(fn, data_dir, f"{name}/epoch-{epoch:03d}.pt", "re-create it with 'make snapshots'")
    try:
        snap = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # the manifest itself was rewritten over a bad file
        raise ValueError(f"{fn}: {path} matches the manifest but is not a snapshot ({e})") from None
    missing = [k for k in _SNAPSHOT_KEYS if not isinstance(snap, dict) or k not in snap]
    if missing:
        raise ValueError(f"{fn}: {path} is not a snapshot: keys {missing} are missing")
    return snap


def read_history(name: str = "zfnet-small-fashion", data_dir: str | os.PathLike | None = None,
                 fn: str = "read_history") -> dict[str, list[float]]:
    """``data_dir/<name>/history.json`` checked: four lists of numbers of one length (one entry per epoch)."""
    data_dir = Path(data_dir or DATA_DIR)
    _network(fn, name, data_dir)
    path = data_dir / name / "history.json"
    if not path.exists():
        raise FileNotFoundError(f"{fn}: {path} is missing; re-create it with 'make snapshots'")
    try:
        hist = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{fn}: {path} is corrupted (not JSON: {e})") from None
    if not isinstance(hist, dict) or sorted(hist) != sorted(_HISTORY_KEYS) or not all(
            isinstance(v, list) and all(isinstance(a, (int, float)) for a in v) for v in hist.values()):
        raise ValueError(f"{fn}: {path}: expected lists of numbers {list(_HISTORY_KEYS)}, got "
                         f"{sorted(hist) if isinstance(hist, dict) else type(hist).__name__}")
    lengths = {k: len(v) for k, v in hist.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"{fn}: {path}: expected four lists of one length, got lengths {lengths}")
    return {k: [float(a) for a in hist[k]] for k in _HISTORY_KEYS}


def package_file(package: str, relative: str, pip_hint: str) -> Path:
    """Path of a weight file inside an installed Python package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the Python package {package!r} is not installed; install it with: {pip_hint}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed {package!r}; reinstall it with: {pip_hint}")
    return path
