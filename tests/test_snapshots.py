"""The snapshot trainer: resumable, same weights under 2-process DDP, checked by sha256 when loaded."""

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch

from cnnlib import pretrained, snapshots, train
from cnnlib.models import ZFNetSmall

TINY = dict(name="tiny", dataset="digits", num_epochs=3, batch_size=64, lr=0.02, dropout=0.0, snapshot_epochs=(1, 3))


def _weights(work, name="tiny"):
    return torch.load(os.path.join(work, name, "checkpoint.pt"), weights_only=False)["model"]


def test_resume_gives_the_same_weights(tmp_path):
    cfg = train.SnapshotConfig(**{**TINY, "dropout": 0.5})  # dropout on: its masks must resume too
    cpu = torch.device("cpu")
    train.train_snapshots(cfg, tmp_path / "a", tmp_path / "wa", device=cpu, progress=False)
    train.train_snapshots(cfg, tmp_path / "b", tmp_path / "wb", device=cpu, progress=False, stop_after=1)
    checkpoint = torch.load(tmp_path / "wb/tiny/checkpoint.pt", weights_only=False)
    assert len(train.History(**checkpoint["history"]).test_acc) == 1
    assert "cuda_rng" in checkpoint and (checkpoint["cuda_rng"] is not None) == torch.cuda.is_available()
    hist = train.train_snapshots(cfg, tmp_path / "b", tmp_path / "wb", device=cpu, progress=False)
    assert len(hist.test_acc) == 3
    for k, v in _weights(tmp_path / "wa").items():
        assert torch.equal(v, _weights(tmp_path / "wb")[k]), k
    assert pretrained.available(tmp_path / "a") == {"tiny": [1, 3]}
    with pytest.raises(ValueError, match="^train_snapshots: .* another configuration"):
        train.train_snapshots(train.SnapshotConfig(**{**TINY, "dropout": 0.5, "lr": 0.1}), tmp_path / "b",
                              tmp_path / "wb", device=cpu, progress=False)
    (tmp_path / "wb/tiny/checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="^train_snapshots: .*checkpoint.pt is corrupted"):
        train.train_snapshots(cfg, tmp_path / "b", tmp_path / "wb", device=cpu, progress=False)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.enable_socket
def test_two_process_ddp_matches_one_process(tmp_path):
    """With dropout on: each example gets the mask it gets in one process (so the ranks' masks differ)."""
    args = ["-m", "cnnlib.train", "--name", "tiny", "--dataset", "digits", "--epochs", "1", "--snapshots", "1",
            "--batch-size", "64", "--dropout", "0.5", "--no-progress", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, *args, "--out", str(tmp_path / "o1"), "--work", str(tmp_path / "w1")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
                          "--master_addr=127.0.0.1", f"--master_port={_free_port()}", *args,
                          "--out", str(tmp_path / "o2"), "--work", str(tmp_path / "w2")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    w1, w2 = _weights(tmp_path / "w1"), _weights(tmp_path / "w2")
    torch.manual_seed(0)
    w0 = ZFNetSmall(in_channels=1, image_size=8, dropout=0.5).state_dict()
    for k in w1:
        # the same weights up to float summation order (seen: <= 3e-5), after steps that moved them far more
        assert float((w1[k] - w0[k]).abs().max()) > 1e-3, k
        torch.testing.assert_close(w2[k], w1[k], atol=1e-4, rtol=1e-3, msg=k)


def test_augment_flips_and_shifts_exactly():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    flip = torch.tensor([True, False])
    offsets = torch.tensor([[2, 2], [2, 3]])  # first: no shift; second: shift left by one column
    out = train.apply_augment(x, flip, offsets)
    assert torch.equal(out[0], x[0].flip(2))
    assert torch.equal(out[1, 0, :, :3], x[1, 0, :, 1:]) and (out[1, 0, :, 3] == 0).all()


def test_corrupted_snapshot_is_refused(tmp_path):
    cfg = train.SnapshotConfig(**{**TINY, "num_epochs": 1, "snapshot_epochs": (1,)})
    train.train_snapshots(cfg, tmp_path / "d", tmp_path / "w", device=torch.device("cpu"), progress=False)
    model = pretrained.load("tiny", data_dir=tmp_path / "d", device=torch.device("cpu"))
    assert not model.training and model(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    path = tmp_path / "d/tiny/epoch-001.pt"
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    with pytest.raises(ValueError, match="corrupted or truncated"):
        pretrained.load("tiny", data_dir=tmp_path / "d")
    with pytest.raises(ValueError, match="no snapshot at epoch 7"):
        pretrained.load("tiny", epoch=7, data_dir=tmp_path / "d")
    with pytest.raises(ValueError, match="unknown network"):
        pretrained.load("alexnet", data_dir=tmp_path / "d")


def test_torchvision_cached_never_downloads(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert pretrained.torchvision_cached("alexnet") is None  # not cached: no download, just None
    (tmp_path / "checkpoints").mkdir()
    state = torchvision.models.alexnet(weights=None).state_dict()
    name = torchvision.models.AlexNet_Weights.DEFAULT.url.rsplit("/", 1)[-1]
    torch.save(state, tmp_path / "checkpoints" / name)
    model = pretrained.torchvision_cached("alexnet", device=torch.device("cpu"))
    assert not model.training and torch.equal(model.features[0].weight, state["features.0.weight"])
    with pytest.raises(ValueError, match="unknown torchvision architecture"):
        pretrained.torchvision_cached("lenet9000")


def test_history_reads_back_the_run(tmp_path):
    cfg = train.SnapshotConfig(**{**TINY, "num_epochs": 2, "snapshot_epochs": (1, 2)})
    hist = train.train_snapshots(cfg, tmp_path / "d", tmp_path / "w", device=torch.device("cpu"), progress=False)
    back = pretrained.history("tiny", data_dir=tmp_path / "d")
    assert isinstance(back, train.History) and back == hist  # every float survives the JSON round trip
    assert len(back.test_acc) == 2 and back.train_loss[1] < back.train_loss[0]
    assert back.test_acc[-1] == pretrained.load_snapshot("tiny", data_dir=tmp_path / "d")["test_acc"]
    # the files behind it: where each snapshot lives, the manifest of their sha256, the history as four lists
    paths = [snapshots.snapshot_path(tmp_path / "d", "tiny", e) for e in (1, 2)]
    assert [p.relative_to(tmp_path / "d").as_posix() for p in paths] == ["tiny/epoch-001.pt", "tiny/epoch-002.pt"]
    manifest = snapshots.read_manifest(tmp_path / "d")
    assert manifest == {p.relative_to(tmp_path / "d").as_posix(): {"sha256": snapshots.sha256(p),
                                                                    "bytes": p.stat().st_size} for p in paths}
    raw = snapshots.read_history("tiny", tmp_path / "d")
    assert raw == {"train_loss": back.train_loss, "train_acc": back.train_acc, "test_loss": back.test_loss,
                   "test_acc": back.test_acc}
    (tmp_path / "d/MANIFEST.json").write_text('{"tiny/epoch-1.pt": {"sha256": "0", "bytes": 1}}')
    with pytest.raises(ValueError, match="read_manifest: .* is corrupted: expected entries"):
        snapshots.read_manifest(tmp_path / "d")
    (tmp_path / "d/MANIFEST.json").write_text("{")
    with pytest.raises(ValueError, match="read_manifest: .* is corrupted \\(not JSON"):
        snapshots.read_manifest(tmp_path / "d")
    snapshots.write_manifest(tmp_path / "d")  # the writer gives back what the reader accepts
    assert snapshots.read_manifest(tmp_path / "d") == manifest
    with pytest.raises(ValueError, match="unknown network"):
        pretrained.history("alexnet", data_dir=tmp_path / "d")
    (tmp_path / "d/tiny/history.json").unlink()
    with pytest.raises(FileNotFoundError, match="history.json"):
        pretrained.history("tiny", data_dir=tmp_path / "d")


def test_shipped_zfnet_small_snapshots():
    """The snapshots in data/ load, pass their sha256 check, and score what they claim on the test set."""
    from cnnlib import data

    shipped = pretrained.available()
    assert "zfnet-small-fashion" in shipped and 1 in shipped["zfnet-small-fashion"]
    X, y = data.load_fashion_mnist("test")
    for epoch in (shipped["zfnet-small-fashion"][0], shipped["zfnet-small-fashion"][-1]):
        snap = pretrained.load_snapshot("zfnet-small-fashion", epoch)
        model = pretrained.load("zfnet-small-fashion", epoch=epoch, device=torch.device("cpu"))
        _, acc = train.evaluate(model, X, y)
        assert abs(acc - snap["test_acc"]) < 2e-3, (epoch, acc, snap["test_acc"])  # float16 storage: tiny changes
    cfg = train.SnapshotConfig(**{**snap["config"], "snapshot_epochs": tuple(snap["config"]["snapshot_epochs"])})
    assert epoch == cfg.num_epochs, "the shipped series must hold the finished run"
    assert acc >= 0.92  # the course's target for the finished run


def test_train_and_pretrained_do_not_import_each_other():
    """The snapshot files are cnnlib.snapshots' business: train needs it, not pretrained (which needs train)."""
    code = ("import sys, cnnlib.train, cnnlib.snapshots; "
            "print(sorted(m for m in sys.modules if m in ('cnnlib.pretrained', 'cnnlib.hed')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr[-2000:]


def test_checked_file_refuses_a_changed_or_unlisted_file(tmp_path):
    f = tmp_path / "w.pt"
    f.write_bytes(b"weights")
    (tmp_path / "MANIFEST.json").write_text(json.dumps({"w.pt": {"sha256": snapshots.sha256(f), "bytes": 7}}))
    assert snapshots.checked_file("load_x", tmp_path, "w.pt", "run x") == f
    with pytest.raises(ValueError, match="load_x: 'v.pt' is not in"):
        snapshots.checked_file("load_x", tmp_path, "v.pt", "run x")
    f.write_bytes(b"weightz")
    with pytest.raises(ValueError, match="load_x: .* does not match"):
        snapshots.checked_file("load_x", tmp_path, "w.pt", "run x")
    (tmp_path / "MANIFEST.json").write_text("{not json")
    with pytest.raises(ValueError, match="load_x: .* is corrupted"):
        snapshots.checked_file("load_x", tmp_path, "w.pt", "run x")


def test_record_in_manifest_writes_what_checked_file_checks_and_keeps_the_other_entries(tmp_path):
    (tmp_path / "a.pt").write_bytes(b"first")
    (tmp_path / "b.json").write_text("{}")
    snapshots.record_in_manifest(tmp_path, "a.pt", crops=4)
    snapshots.record_in_manifest(tmp_path, "b.json", pool={"x": {"sha256": "0" * 64}})
    manifest = json.loads((tmp_path / "MANIFEST.json").read_text())
    assert manifest == {"a.pt": {"sha256": snapshots.sha256(tmp_path / "a.pt"), "bytes": 5, "crops": 4},
                        "b.json": {"sha256": snapshots.sha256(tmp_path / "b.json"), "bytes": 2,
                                   "pool": {"x": {"sha256": "0" * 64}}}}
    assert snapshots.checked_file("f", tmp_path, "a.pt", "redo") == tmp_path / "a.pt"
    (tmp_path / "a.pt").write_bytes(b"second")
    with pytest.raises(ValueError, match="f: .* does not match"):
        snapshots.checked_file("f", tmp_path, "a.pt", "redo")
    snapshots.record_in_manifest(tmp_path, "a.pt")  # re-recorded: checked again, its old extras gone
    assert snapshots.checked_file("f", tmp_path, "a.pt", "redo") == tmp_path / "a.pt"
    assert json.loads((tmp_path / "MANIFEST.json").read_text())["a.pt"] == {
        "sha256": snapshots.sha256(tmp_path / "a.pt"), "bytes": 6}


def test_every_shipped_file_is_read_from_cnnlib_data(tmp_path):
    """One data root: with ``CNNLIB_DATA`` pointing at a copy, every folder of shipped files lies under it and the
    loaders read the copy (a changed copy is what they return), not the repository's ``data/``."""
    copy = tmp_path / "data"
    (copy / "actmax").mkdir(parents=True)
    results = json.loads((snapshots.DATA_DIR / "actmax" / "results.json").read_text())
    (copy / "actmax" / "results.json").write_text(json.dumps({**results, "copy": True}))
    snapshots.record_in_manifest(copy / "actmax", "results.json")
    (copy / "sanity").mkdir()
    (copy / "sanity" / "copy-net.pt").write_bytes(b"not a network")
    snapshots.record_in_manifest(copy / "sanity", "copy-net.pt", fit=0.5)
    shutil.copytree(snapshots.DATA_DIR / "zfnet-small-fashion", copy / "zfnet-small-fashion")
    shutil.copy(snapshots.DATA_DIR / "MANIFEST.json", copy / "MANIFEST.json")
    code = ("import json; from cnnlib import actmax, distill, pretrained, rbm, sanity, snapshots, topk, transfer\n"
            "print(json.dumps({'roots': [str(p) for p in (snapshots.DATA_DIR, actmax.RENDER_DIR, distill.PHOTO_DIR,"
            " topk.TOPK_DIR)], 'copy': actmax.render_results().get('copy'), 'runs': sorted(sanity.shipped_runs()),"
            " 'available': pretrained.available()}))\n"
            "try:\n    rbm.load_shipped()\nexcept FileNotFoundError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "CNNLIB_DATA": str(copy)})
    assert out.returncode == 0, out.stderr[-2000:]
    first, second = out.stdout.splitlines()[:2]
    got = json.loads(first)
    assert got["roots"] == [str(copy), str(copy / "actmax"), str(copy / "zfnet-photo"), str(copy / "topk")]
    assert got["copy"] is True and got["runs"] == ["copy-net"]
    assert got["available"] == pretrained.available()
    assert str(copy / "sae" / "MANIFEST.json") in second  # the RBM stack is looked for in the copy too


def test_made_from_and_check_made_from_name_the_snapshots_that_differ(tmp_path):
    shutil.copy(snapshots.DATA_DIR / "MANIFEST.json", tmp_path / "MANIFEST.json")
    epochs = snapshots.available(tmp_path)["zfnet-small-fashion"]
    made = snapshots.made_from("zfnet-small-fashion", epochs[-2:], tmp_path)
    manifest = json.loads((tmp_path / "MANIFEST.json").read_text())
    assert made == {rel: manifest[rel]["sha256"] for rel in made} and len(made) == 2
    assert len(snapshots.made_from("zfnet-small-fashion", data_dir=tmp_path)) == len(epochs)
    result = tmp_path / "results"
    result.mkdir()
    (result / "r.pt").write_bytes(b"computed from two snapshots")
    snapshots.record_in_manifest(result, "r.pt", snapshots=made)
    snapshots.check_made_from("f", result, "r.pt", "remake it", tmp_path)  # the same snapshots: no error
    last = f"zfnet-small-fashion/epoch-{epochs[-1]:03d}.pt"
    manifest[last]["sha256"] = "0" * 64  # as if the network had been trained again
    (tmp_path / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=f"^f: .*r.pt was made from other snapshots than those here \\({last}\\); "
                                         "remake it$"):
        snapshots.check_made_from("f", result, "r.pt", "remake it", tmp_path)
    for recorded in ({}, ["a"]):
        snapshots.record_in_manifest(result, "r.pt", snapshots=recorded)
        with pytest.raises(ValueError, match="^f: .*r.pt does not record the snapshots it was made from"):
            snapshots.check_made_from("f", result, "r.pt", "remake it", tmp_path)
    snapshots.record_in_manifest(result, "r.pt")
    with pytest.raises(ValueError, match="does not record the snapshots"):
        snapshots.check_made_from("f", result, "r.pt", "remake it", tmp_path)
    with pytest.raises(ValueError, match="^made_from: unknown network 'resnet'"):
        snapshots.made_from("resnet", data_dir=tmp_path)
    with pytest.raises(ValueError, match=r"^made_from: zfnet-small-fashion has no snapshot at epochs \[999\]"):
        snapshots.made_from("zfnet-small-fashion", [999], tmp_path)


def test_record_all_lists_exactly_the_matching_files_and_keeps_others_only_if_asked(tmp_path):
    for name, content in (("a.pt", b"a"), ("b.pt", b"bb"), ("notes.txt", b"n")):
        (tmp_path / name).write_bytes(content)
    snapshots.record_in_manifest(tmp_path, "notes.txt", made_by="another script")
    snapshots.record_all(tmp_path, "*.pt", keep_others=True)
    manifest = json.loads((tmp_path / "MANIFEST.json").read_text())
    assert sorted(manifest) == ["a.pt", "b.pt", "notes.txt"] and manifest["notes.txt"]["made_by"] == "another script"
    assert manifest["b.pt"] == {"sha256": snapshots.sha256(tmp_path / "b.pt"), "bytes": 2}
    (tmp_path / "notes.txt").unlink()  # a file no longer there loses its entry, even kept
    snapshots.record_all(tmp_path, "*.pt", keep_others=True)
    assert sorted(json.loads((tmp_path / "MANIFEST.json").read_text())) == ["a.pt", "b.pt"]
    (tmp_path / "notes.txt").write_bytes(b"n")
    snapshots.record_in_manifest(tmp_path, "notes.txt")
    snapshots.record_all(tmp_path, "a.pt")  # without keep_others: exactly the matching files
    assert sorted(json.loads((tmp_path / "MANIFEST.json").read_text())) == ["a.pt"]
