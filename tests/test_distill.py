"""Distillation of a teacher into the photo network: loss, agreement, crops, resumable training, snapshots."""

import json

import pytest
import torch
import torch.nn as nn

from cnnlib import distill


def test_distillation_loss_against_the_formula_and_its_gradient():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 7, generator=g, dtype=torch.float64), torch.randn(5, 7, generator=g, dtype=torch.float64)
    T = 2.0
    p, q = torch.softmax(t / T, 1), torch.softmax(s / T, 1)
    want = T * T * (p * (p.log() - q.log())).sum(1).mean()
    s.requires_grad_(True)
    loss = distill.distillation_loss(s, t, T)
    torch.testing.assert_close(loss, want)
    loss.backward()
    torch.testing.assert_close(s.grad, T * (q - p) / 5)  # d/ds of T²·KL = T (q − p) / N
    assert float(distill.distillation_loss(t, t, T)) == pytest.approx(0.0, abs=1e-12)
    torch.testing.assert_close(distill.distillation_loss(t + 3.0, t, T), distill.distillation_loss(t, t, T))


def test_distillation_loss_errors():
    with pytest.raises(ValueError, match="distillation_loss: expected logits of one shape"):
        distill.distillation_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="distillation_loss: expected temperature in"):
        distill.distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), 0.0)


def test_agreement():
    t = torch.zeros(4, 10)
    t[torch.arange(4), torch.tensor([0, 1, 2, 3])] = 1.0  # teacher's classes 0, 1, 2, 3
    s = torch.arange(10.0).flip(0).expand(4, 10).clone()  # student ranks 0 > 1 > 2 > … for every input
    assert distill.agreement(s, t) == (0.25, 1.0)
    s[3] = torch.arange(10.0)  # ranks 9 > 8 > … : class 3 is 7th
    assert distill.agreement(s, t) == (0.25, 0.75)


def test_shifted_batch_cuts_windows():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, 3, 12, 12), generator=g, dtype=torch.uint8)
    out = distill.shifted_batch(images, 8, torch.Generator().manual_seed(1))
    assert out.shape == (6, 3, 8, 8) and out.dtype == torch.float32
    for img, win in zip(images, out):
        found = [(a, b) for a in range(5) for b in range(5)
                 if torch.equal(img[:, a:a + 8, b:b + 8].float() / 255, win)]
        assert found
    torch.testing.assert_close(out, distill.shifted_batch(images, 8, torch.Generator().manual_seed(1)))


class _Teacher(nn.Module):
    """A tiny stand-in for EfficientNet-Lite0: 1000 logits from the mean colour."""

    input_mean, input_std = (0.5,) * 3, (0.5,) * 3

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.fc = nn.Linear(3, 1000)

    def forward(self, x):
        return self.fc(x.mean((2, 3)))


def _tiny(monkeypatch, **kw):
    g = torch.Generator().manual_seed(0)
    pool = [torch.rand(3, 40, 50, generator=g), torch.rand(3, 30, 30, generator=g)]
    monkeypatch.setattr(distill.CropCache, "_inputs", lambda self: (pool, _Teacher()))
    base = dict(size=16, shift=2, teacher_size=24, widths=(4, 6, 6, 6, 4), fc_width=8, chunks=2, chunk=8,
                steps=6, batch=4, warmup=2)
    return distill.Config(**{**base, **kw})


def test_crop_cache_is_shared_and_teacher_logits_match(tmp_path, monkeypatch):
    cfg = _tiny(monkeypatch)
    cache = distill.CropCache(tmp_path, cfg, log=lambda m: None)
    a = cache.get(0)
    assert a["images"].shape == (8, 3, 20, 20) and a["images"].dtype == torch.uint8
    assert a["logits"].shape == (8, 1000) and a["logits"].dtype == torch.float16
    monkeypatch.setattr(distill.CropCache, "_inputs", lambda self: pytest.fail("chunk 0 made twice"))
    torch.testing.assert_close(distill.CropCache(tmp_path, cfg).get(0)["images"], a["images"])
    # the logits are the teacher's on its own scaling of the crops
    from cnnlib.pretrained import imagenet_preprocess
    x = a["images"].float() / 255
    want = _Teacher()(imagenet_preprocess(x, 24, 24, mean=(0.5,) * 3, std=(0.5,) * 3))
    torch.testing.assert_close(a["logits"].float(), want.half().float(), atol=2e-2, rtol=1e-2)


def test_train_resumes_to_the_same_weights_and_ships_a_checked_snapshot(tmp_path, monkeypatch):
    cfg = _tiny(monkeypatch)
    full = distill.train("net", cfg, tmp_path / "a", "cpu", log=lambda m: None)
    # the same run interrupted after three steps, then started again
    real, calls = distill.distillation_loss, {"n": 0}

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(distill, "distillation_loss", failing)
    with pytest.raises(KeyboardInterrupt):
        distill.train("net", cfg, tmp_path / "b", "cpu", log=lambda m: None, checkpoint_every=0.0)
    monkeypatch.setattr(distill, "distillation_loss", real)
    state = torch.load(tmp_path / "b" / "net" / "checkpoint.pt", weights_only=False)
    assert state["step"] == 3
    resumed = distill.train("net", cfg, tmp_path / "b", "cpu", log=lambda m: None)
    for (k, v), w in zip(full.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(v, w, msg=k)
    # another configuration refuses the checkpoint
    with pytest.raises(ValueError, match="train: .* another configuration"):
        distill.train("net", distill.Config(**{**vars(cfg), "lr": 1e-4}), tmp_path / "b", "cpu")
    # ship, load, refuse a corrupted file
    out = tmp_path / "ship"
    path = distill.export(full, "net", cfg, tmp_path / "a", out)
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert set(manifest) == {"net.pt"}
    from cnnlib.photos import pool_fingerprint
    assert manifest["net.pt"]["pool"] == pool_fingerprint()  # the pool it was made from, checked by load
    model = distill.load("net", "cpu", out)
    assert model.config == cfg and len(model.history) == 1
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(model(x), full.eval().half().float()(x), atol=1e-3, rtol=1e-3)
    with pytest.raises(ValueError, match="load: 'nope.pt' is not in"):
        distill.load("nope", "cpu", out)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="load: .* does not match"):
        distill.load("net", "cpu", out)
    with pytest.raises(ValueError, match="load_snapshot: .* does not match"):
        distill.load_snapshot("net", out)


def test_stop_at_ends_early_on_the_same_schedule(tmp_path, monkeypatch):
    cfg = _tiny(monkeypatch)
    early = distill.train("net", cfg, tmp_path, "cpu", log=lambda m: None, stop_at=3)
    state = torch.load(tmp_path / "net" / "checkpoint.pt", weights_only=False)
    assert state["step"] == 3 and state["history"][-1]["step"] == 3
    assert state["sched"]["last_epoch"] == 3  # the learning rate of step 3 of a 6-step schedule, not of a 3-step one
    snap = torch.load(distill.export(early, "net", cfg, tmp_path, tmp_path / "out"), weights_only=True)
    assert snap["steps"] == 3 and snap["config"]["steps"] == 6


def test_normalize_is_the_imagenet_scaling_per_channel():
    x = torch.rand(2, 3, 5, 5, dtype=torch.float64)
    y = distill.normalize(x)
    for c in range(3):
        torch.testing.assert_close(y[:, c], (x[:, c] - distill.MEAN[c]) / distill.STD[c])
    assert y.dtype == torch.float64


def test_make_crops_are_the_seeded_crops_with_the_teachers_logits(monkeypatch):
    from cnnlib.photos import random_crops
    from cnnlib.pretrained import imagenet_preprocess

    cfg = _tiny(monkeypatch)
    pool, teacher = distill.CropCache._inputs(None)
    data = distill.make_crops(pool, teacher, 5, seed=7, cfg=cfg, batch=2)
    x = random_crops(pool, 5, cfg.size + 2 * cfg.shift, seed=7)
    assert data["seed"] == 7 and data["images"].dtype == torch.uint8
    assert (data["images"].float() / 255 - x).abs().max() <= 0.5 / 255 + 1e-6  # x rounded to 8 bits
    want = teacher(imagenet_preprocess(x, cfg.teacher_size, cfg.teacher_size, mean=teacher.input_mean,
                                       std=teacher.input_std))
    torch.testing.assert_close(data["logits"].float(), want.half().float(), atol=2e-2, rtol=1e-2)


def test_heldout_crops_are_neither_training_nor_the_cached_heldout_crops():
    from cnnlib.photos import load_pool, random_crops

    cfg = distill.Config()
    held = distill.heldout_crops(6)
    pool = load_pool()
    torch.testing.assert_close(held, random_crops(pool, 6, cfg.size, seed=distill.HELDOUT_SEED + 1))
    assert held.shape == (6, 3, cfg.size, cfg.size)
    for seed in (cfg.seed * 1000, cfg.seed * 1000 + 1, distill.HELDOUT_SEED):  # chunks 0, 1 and the cache's own
        other = random_crops(pool, 6, cfg.size, seed=seed)
        assert all(not torch.allclose(h, o) for h in held for o in other)
    torch.testing.assert_close(distill.heldout_crops(3), held[:3])  # the first n of any longer set


def test_a_crop_cache_from_another_pool_is_refused(tmp_path, monkeypatch):
    import json

    from cnnlib.photos import pool_fingerprint

    cfg = _tiny(monkeypatch)
    cache = distill.CropCache(tmp_path, cfg, log=lambda m: None)
    assert cache.pool == pool_fingerprint() == json.loads((tmp_path / "pool.json").read_text())
    distill.CropCache(tmp_path, cfg)  # the same pool: accepted
    other = {**cache.pool, "mate-backgrounds": {**cache.pool["mate-backgrounds"], "sha256": "0" * 64}}
    (tmp_path / "pool.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match=f"CropCache: the crop cache {tmp_path} was made from other "
                                         f"mate-backgrounds photos.*delete {tmp_path}"):
        distill.CropCache(tmp_path, cfg)
    (tmp_path / "pool.json").write_text(json.dumps(cache.pool))
    monkeypatch.setenv("CNNLIB_PLASMA_WALLPAPERS", str(tmp_path / "hidden"))
    with pytest.raises(FileNotFoundError, match="CropCache: the photo pool lacks Debian's plasma-workspace-wallpapers"):
        distill.CropCache(tmp_path, cfg)
