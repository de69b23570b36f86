"""Knowledge distillation of a teacher into a student on random crops of photos: the course's photo network.

Zeiler & Fergus train on 1.3 M labelled ImageNet photos; here there are ~340 photos and no labels. A trained
ImageNet classifier (the teacher, EfficientNet-Lite0) labels random crops of them instead, and the student
learns to copy the teacher's softened class probabilities (Hinton, Vinyals & Dean 2015, "Distilling the
Knowledge in a Neural Network"). With teacher logits ``t``, student logits ``s`` and temperature ``T``:

    p = softmax(t / T),   q = softmax(s / T),   L = T² · KL(p ‖ q) = T² · Σ_k p_k (log p_k − log q_k).

The ``T²`` keeps the gradient's scale independent of ``T``. Each crop is cut with a margin around the
student's view (:func:`cnnlib.photos.random_crops` at ``size + 2·shift`` pixels); the teacher sees the whole
crop upsampled to ``teacher_size``, the student a ``size``-pixel window at a random offset (random shifts).

The crops and the teacher's logits are made in chunks and cached under ``work/crops`` (several runs share them,
a restart resumes); training alternates: make chunk ``k``, then train ``steps // chunks`` steps on chunks
``0 … k``, so the network sees fresh crops from the start; then the remaining steps on all chunks.
Checkpoints are written every few minutes; the same command continues an interrupted run.

Command (what ``make photonet`` runs): ``python -m cnnlib.distill --out data/zfnet-photo --work _build/photonet
--stop-at 1001`` trains ``zf7s2`` (ZF's 7×7/2 first layer) and ``alex11s4`` (AlexNet's 11×11/4) and ships float16
snapshots with a sha256 manifest of their own (``MANIFEST.json``), checked by :func:`load`. The shipped runs
were stopped at step 1001 of the 1600 scheduled by the project's deadline; without ``--stop-at`` the whole
schedule runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from . import checks
from .devices import device as default_device
from .models import ZFNetPhoto
from .photos import check_pool, check_shipped, load_pool, pool_fingerprint, random_crops
from .pretrained import efficientnet_lite0, imagenet_preprocess
from .snapshots import DATA_DIR, checked_file, record_in_manifest

#: Folder of the shipped photo networks (``data/zfnet-photo``).
PHOTO_DIR = DATA_DIR / "zfnet-photo"
#: The two first layers compared (Zeiler & Fergus Fig. 6): name → (kernel, stride).
ARCHS = {"zf7s2": (7, 2), "alex11s4": (11, 4)}
#: The student's input scaling (ImageNet mean and standard deviation of RGB in [0, 1]).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
#: Seed offset of the held-out crops (never used in training).
HELDOUT_SEED = 10_000_019


@dataclass
class Config:
    """One distillation run. ``steps`` mini-batches of ``batch`` crops; crops come in ``chunks`` × ``chunk``."""

    conv1: tuple[int, int] = (7, 2)
    size: int = 64
    shift: int = 4
    teacher_size: int = 128
    temperature: float = 2.0
    widths: tuple[int, ...] = (32, 64, 96, 96, 64)
    fc_width: int = 256
    dropout: float = 0.25
    conv1_scale: float = 0.01
    chunks: int = 24
    chunk: int = 1024
    steps: int = 6000
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: int = 50
    seed: int = 0
    extra: dict = field(default_factory=dict)


def student(cfg: Config) -> torch.nn.Module:
    """The untrained :class:`cnnlib.models.ZFNetPhoto` of a run (seeded by ``cfg.seed``)."""
    torch.manual_seed(cfg.seed)
    return ZFNetPhoto(1000, cfg.size, tuple(cfg.conv1), tuple(cfg.widths), cfg.fc_width, cfg.dropout,
                      conv1_scale=cfg.conv1_scale)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """The student's input: RGB ``(N, 3, H, W)`` in [0, 1] → ``(x − MEAN) / STD`` per channel."""
    mean = torch.tensor(MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      temperature: float = 2.0) -> torch.Tensor:
    """``T² · KL(softmax(t/T) ‖ softmax(s/T))``, averaged over the batch (Hinton et al. 2015).

    Args:
        student_logits, teacher_logits: ``(N, K)``. temperature: ``T > 0``.

    Returns:
        A scalar tensor, 0 exactly when the two softened distributions agree.
    """
    for name, v in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        checks.images("distillation_loss", v, ndim=2, name=name)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"distillation_loss: expected logits of one shape, got {tuple(student_logits.shape)} "
                         f"and {tuple(teacher_logits.shape)}")
    T = checks.number("distillation_loss", temperature, "temperature", low=0, low_open=True)
    log_q = F.log_softmax(student_logits / T, dim=1)
    log_p = F.log_softmax(teacher_logits.to(student_logits.dtype) / T, dim=1)
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True) * T * T


def agreement(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> tuple[float, float]:
    """Top-1 and top-5 agreement with the teacher: the share of inputs whose teacher's top class is the
    student's top class, or among the student's five highest. Returns two fractions in [0, 1]."""
    if student_logits.ndim != 2 or student_logits.shape != teacher_logits.shape:
        raise ValueError(f"agreement: expected two (N, K) logit tensors of one shape, got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    t = teacher_logits.argmax(1)
    top5 = student_logits.topk(5, dim=1).indices
    return float((top5[:, 0] == t).float().mean()), float((top5 == t[:, None]).any(1).float().mean())


@torch.no_grad()
def make_crops(pool: list[torch.Tensor], teacher: torch.nn.Module, n: int, seed: int, cfg: Config,
               batch: int = 16) -> dict:
    """``n`` crops of ``pool`` at ``size + 2·shift`` pixels (uint8) and the teacher's logits on them (float16).

    The teacher sees each crop resized to ``teacher_size`` and scaled as it was trained
    (:func:`cnnlib.pretrained.imagenet_preprocess` with the model's ``input_mean``/``input_std``).
    """
    side = cfg.size + 2 * cfg.shift
    x = random_crops(pool, n, side, seed=seed)  # (n, 3, side, side) in [0, 1]
    dev = checks.model_device("make_crops", teacher)
    logits = []
    for i in range(0, n, batch):
        xb = imagenet_preprocess(x[i:i + batch].to(dev), size=cfg.teacher_size, resize=cfg.teacher_size,
                                 mean=teacher.input_mean, std=teacher.input_std)
        logits.append(teacher(xb).float().cpu())
    return {"images": (x * 255).round().to(torch.uint8), "logits": torch.cat(logits).half(), "seed": seed}


def _save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True


class CropCache:
    """Chunks of crops and teacher logits under ``folder``, made once and shared by concurrent runs.

    Chunk ``k`` holds ``cfg.chunk`` crops with seed ``cfg.seed · 1000 + k``; the held-out chunk uses
    ``HELDOUT_SEED``. A process making a chunk holds ``chunk-k.lock``; others wait for it. ``pool.json`` holds
    the fingerprint of the photo pool the crops are cut from (:func:`cnnlib.photos.pool_fingerprint`, kept as
    ``self.pool`` and shipped by :func:`export`); a cache made from another pool is refused.
    """

    def __init__(self, folder: str | os.PathLike, cfg: Config, log=print):
        self.folder, self.cfg, self.log = Path(folder), cfg, log
        self.folder.mkdir(parents=True, exist_ok=True)
        self._pool = self._teacher = None
        record = self.folder / "pool.json"
        if record.exists():  # old and new chunks must come from one pool
            self.pool = json.loads(record.read_text())
            check_pool("CropCache", self.pool, f"the crop cache {self.folder}",
                       f"delete {self.folder} to make them again from this pool")
        else:
            self.pool = pool_fingerprint()
            record.write_text(json.dumps(self.pool, indent=1) + "\n")

    def _inputs(self):
        if self._pool is None:
            self._pool, self._teacher = load_pool(), efficientnet_lite0()
        return self._pool, self._teacher

    def path(self, k: int | str) -> Path:
        c = self.cfg
        tag = f"{c.size + 2 * c.shift}px-t{c.teacher_size}"
        return self.folder / (f"chunk-{k:04d}-{tag}.pt" if isinstance(k, int) else f"{k}-{tag}.pt")

    def get(self, k: int | str, ahead: int | None = None) -> dict:
        """Chunk ``k`` (an int, or ``"heldout"``), made if missing. While another process makes chunk ``k``,
        this one makes chunk ``ahead`` (if given and not there yet) instead of waiting idle."""
        path = self.path(k)
        lock = path.with_suffix(".lock")
        while True:
            if path.exists():
                return torch.load(path, weights_only=True)
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    pid = int(lock.read_text() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and not _alive(pid):
                    lock.unlink(missing_ok=True)
                if ahead is not None and ahead != k and not self.path(ahead).exists() \
                        and not self.path(ahead).with_suffix(".lock").exists():
                    self.get(ahead)
                    ahead = None
                time.sleep(2)
                continue
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            try:
                t0, c = time.time(), self.cfg
                pool, teacher = self._inputs()
                seed = HELDOUT_SEED if k == "heldout" else c.seed * 1000 + int(k)
                data = make_crops(pool, teacher, c.chunk, seed, c)
                _save(data, path)
                self.log(f"crops {path.name}: {c.chunk} in {time.time() - t0:.0f} s")
            finally:
                lock.unlink(missing_ok=True)


def shifted_batch(images: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """A ``size``-pixel window of each uint8 image ``(N, 3, S, S)`` at a random offset in ``[0, S − size]``,
    as float in [0, 1]: the random shifts."""
    n, _, S, _ = images.shape
    offs = torch.randint(S - size + 1, (n, 2), generator=gen)
    out = torch.stack([images[i, :, a:a + size, b:b + size] for i, (a, b) in enumerate(offs.tolist())])
    return out.float() / 255


def _lr(cfg: Config, step: int) -> float:
    """Linear warm-up, then cosine decay to 0 (a fraction of ``cfg.lr``)."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    return 0.5 * (1 + math.cos(math.pi * (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)))


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: dict, cfg: Config, batch: int = 256) -> dict:
    """Loss and top-1/top-5 agreement of ``model`` with the teacher's logits on the central windows of a chunk."""
    dev = checks.model_device("evaluate", model)
    was = model.training
    model.eval()
    s0 = cfg.shift
    x = data["images"][:, :, s0:s0 + cfg.size, s0:s0 + cfg.size]
    out = torch.cat([model(normalize(x[i:i + batch].float().div(255).to(dev))).float().cpu()
                     for i in range(0, len(x), batch)])
    model.train(was)
    t = data["logits"].float()
    top1, top5 = agreement(out, t)
    return {"loss": float(distillation_loss(out, t, cfg.temperature)), "top1": top1, "top5": top5}


def train(name: str, cfg: Config, work: str | os.PathLike, device=None, log=print,
          checkpoint_every: float = 180.0, stop_at: int | None = None) -> torch.nn.Module:
    """Distil the teacher into :func:`student` ``(cfg)``; resumable from ``work/<name>/checkpoint.pt``.

    Step ``i`` draws its batch and dropout from seeds fixed by ``(cfg.seed, i)``, so a resumed run takes the same
    steps as an uninterrupted one. Returns the student (eval mode) after ``cfg.steps`` steps, or after step
    ``stop_at`` of that schedule (the learning rate then has not decayed to 0).
    """
    last = cfg.steps if stop_at is None else min(cfg.steps, checks.positive_int("train", stop_at, "stop_at"))
    dev = device or default_device()
    work = Path(work)
    run_dir = work / name
    run_dir.mkdir(parents=True, exist_ok=True)
    cache = CropCache(work / "crops", cfg, log)
    model = student(cfg).to(dev)
    decay = [p for n, p in model.named_parameters() if n.endswith("weight")]
    rest = [p for n, p in model.named_parameters() if not n.endswith("weight")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr(cfg, s))
    step, elapsed, history = 0, 0.0, []
    ckpt = run_dir / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        if state["config"] != asdict(cfg):
            raise ValueError(f"train: {ckpt} was written with another configuration; delete it or use the same "
                             f"settings ({state['config']} vs {asdict(cfg)})")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        step, elapsed, history = state["step"], state["elapsed"], state["history"]
        log(f"{name}: resumed at step {step} ({elapsed / 60:.1f} min trained)")
    per_chunk = max(1, cfg.steps // cfg.chunks)
    heldout = cache.get("heldout")
    chunks: list[dict] = []
    images = logits = None
    model.train()
    t_last, t_ckpt = time.time(), time.time()

    def save():
        _save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "step": step,
               "elapsed": elapsed, "history": history, "config": asdict(cfg)}, ckpt)

    while step < last:
        have = min(cfg.chunks, step // per_chunk + 1)
        if len(chunks) < have:
            t0 = time.time()
            while len(chunks) < have:
                k = len(chunks)
                chunks.append(cache.get(k, ahead=k + 1 if k + 1 < cfg.chunks else None))
            images = torch.cat([c["images"] for c in chunks])
            logits = torch.cat([c["logits"] for c in chunks])
            t_last += time.time() - t0  # making crops is not training time
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        idx = torch.randint(len(images), (cfg.batch,), generator=gen)
        x = normalize(shifted_batch(images[idx], cfg.size, gen)).to(dev)
        t = logits[idx].float().to(dev)
        torch.manual_seed(cfg.seed * 1_000_003 + step)  # dropout
        loss = distillation_loss(model(x), t, cfg.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        now = time.time()
        elapsed += now - t_last
        t_last = now
        if step % 100 == 0 or step == last:
            ev = evaluate(model, heldout, cfg)
            history.append({"step": step, "minutes": round(elapsed / 60, 2), "train_loss": float(loss.detach()), **ev})
            log(f"{name}: step {step}/{cfg.steps} {elapsed / 60:.1f} min loss {float(loss.detach()):.3f} held-out "
                f"loss {ev['loss']:.3f} top-1 {ev['top1']:.3f} top-5 {ev['top5']:.3f} ({len(chunks)} chunks)")
        if now - t_ckpt > checkpoint_every or step == last:
            save()
            t_ckpt = time.time()
            t_last += t_ckpt - now
    return model.eval()


def export(model: torch.nn.Module, name: str, cfg: Config, work: str | os.PathLike,
           out: str | os.PathLike = PHOTO_DIR) -> Path:
    """Write ``out/<name>.pt`` (float16 weights, configuration, training history) and update
    ``out/MANIFEST.json``, with the fingerprint of the pool its crops were cut from (``work/crops/pool.json``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = torch.load(Path(work) / name / "checkpoint.pt", map_location="cpu", weights_only=False)
    snap = {"model": "ZFNetPhoto", "config": asdict(cfg), "steps": state["step"],
            "minutes": round(state["elapsed"] / 60, 1), "history": state["history"],
            "state_dict": {k: v.detach().cpu().half() for k, v in model.state_dict().items()}}
    path = out / f"{name}.pt"
    torch.save(snap, path)
    crops_pool = Path(work) / "crops" / "pool.json"
    pool = json.loads(crops_pool.read_text()) if crops_pool.exists() else pool_fingerprint()
    record_in_manifest(out, path.name, pool=pool)
    return path


def load_snapshot(name: str = "zf7s2", folder: str | os.PathLike | None = None, check_pool: bool = True,
                  fn: str = "load_snapshot") -> dict:
    """The shipped snapshot ``name`` (see :data:`ARCHS`), after checking its sha256 against
    ``MANIFEST.json``; a file that does not match is refused with a ``ValueError``. With ``check_pool`` this
    machine's photo pool must be the one the network was distilled on (:func:`cnnlib.photos.check_pool`): the
    chapters measure and mine it on crops of that pool (:func:`heldout_crops`)."""
    folder = Path(folder or PHOTO_DIR)
    remedy = "re-create it from this pool with 'make photonet'"
    path = checked_file(fn, folder, f"{name}.pt", remedy)
    if check_pool:
        check_shipped(fn, folder, path.name, f"the photo network {path}",
                      remedy + " (or load it with check_pool=False to use it on other images)")
    return torch.load(path, map_location="cpu", weights_only=True)


def load(name: str = "zf7s2", device=None, folder: str | os.PathLike | None = None,
         check_pool: bool = True) -> torch.nn.Module:
    """A shipped photo network (float32, eval mode, on ``device``); its input is :func:`normalize` ``(x)``
    of RGB in [0, 1] at ``model.image_size`` pixels. The snapshot's configuration is ``model.config``, its
    held-out learning curve ``model.history``, its training time in minutes ``model.minutes`` and the steps it
    was trained ``model.steps`` (``config.steps`` unless the run was stopped early). ``check_pool``: as for
    :func:`load_snapshot`."""
    snap = load_snapshot(name, folder, check_pool, fn="load")
    cfg = Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in snap["config"].items()})
    model = student(cfg)
    model.load_state_dict({k: v.float() for k, v in snap["state_dict"].items()})
    model.config, model.history, model.minutes, model.steps = cfg, snap["history"], snap["minutes"], snap["steps"]
    return model.to(device or default_device()).eval()


def heldout_crops(n: int = 512, cfg: Config | None = None) -> torch.Tensor:
    """``n`` held-out crops (seed :data:`HELDOUT_SEED` + 1, never trained on) of the photo pool, RGB in [0, 1]
    at the student's size: what the chapter measures agreement on."""
    cfg = cfg or Config()
    return random_crops(load_pool(), n, cfg.size, seed=HELDOUT_SEED + 1)


def _main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m cnnlib.distill", description=__doc__.split("\n")[0])
    p.add_argument("--runs", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    p.add_argument("--out", default=str(PHOTO_DIR))
    p.add_argument("--work", default="_build/photonet")
    p.add_argument("--steps", type=int, default=Config.steps)
    p.add_argument("--chunks", type=int, default=Config.chunks)
    p.add_argument("--stop-at", type=int, default=None, help="stop after this step of the schedule")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: PyTorch's default)")
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: the fastest present)")
    p.add_argument("--no-export", action="store_true")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = default_device(a.device)
    Path(a.work).mkdir(parents=True, exist_ok=True)

    def log(msg):
        print(time.strftime("%H:%M:%S"), msg, flush=True)

    log(f"device {dev}, {torch.get_num_threads()} threads")
    for name in a.runs:
        cfg = Config(conv1=ARCHS[name], steps=a.steps, chunks=a.chunks)
        model = train(name, cfg, a.work, dev, log, stop_at=a.stop_at)
        if not a.no_export:
            log(f"{name}: shipped {export(model, name, cfg, a.work, a.out)}")


if __name__ == "__main__":
    _main(sys.argv[1:])
