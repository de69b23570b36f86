"""cnnlib.live: the shipped ZFNet-small exported for the live page, checked by a numpy forward pass."""

import base64
import json

import numpy as np
import pytest
import torch

from cnnlib import live, pretrained
from cnnlib.models import ZFNetSmall


@pytest.fixture(scope="module")
def model():
    return pretrained.load(device="cpu")


@pytest.fixture(scope="module")
def content(model):
    return live.export(model, samples_per_class=2)


def _samples(content):
    raw = base64.b64decode(content["samples"]["images"])
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 28, 28) / 255.0


def test_numpy_forward_of_the_export_equals_the_model(model, content):
    """The page's layout (NHWC filters, fc6's rows reordered) computed in numpy gives PyTorch's logits: a wrong
    permutation of any weight, or a wrong LRN convention, would not."""
    X = _samples(content)
    with torch.no_grad():
        ref = model(torch.tensor(X, dtype=torch.float32)[:, None]).numpy()
    got = live.numpy_forward(content, X)
    assert np.abs(got - ref).max() < 1e-4
    assert (got.argmax(1) == ref.argmax(1)).all()


def test_fc6_rows_are_reordered_channels_last(model, content):
    """Row (h·4 + w)·64 + c of the exported fc6 is column c·16 + h·4 + w of PyTorch's weight."""
    e = content["layers"]["fc6"]
    W = np.frombuffer(base64.b64decode(e["weight"]), dtype=np.float16).reshape(e["shape"])  # (1024, 256)
    ref = model.classifier.fc6.weight.detach().half().numpy()  # (256, 1024)
    for h, w, c in [(0, 0, 0), (1, 2, 3), (3, 3, 63)]:
        assert np.array_equal(W[(h * 4 + w) * 64 + c], ref[:, c * 16 + h * 4 + w])


def test_export_reads_the_settings_from_the_model(content):
    assert content["lrn"] == {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}
    assert content["geometry"]["relu1"] == {"size": 5, "jump": 1, "padding": 2}
    assert content["geometry"]["relu5"]["size"] == 43
    assert 0.28 < content["gray"] < 0.29
    assert content["samples"]["labels"] == [c for c in range(10) for _ in range(2)]


def test_export_without_lrn(model):
    m = ZFNetSmall(lrn=False).eval()
    m.load_state_dict(model.state_dict())
    c = live.export(m, samples_per_class=1)
    assert c["lrn"] is None
    X = _samples(c)
    with torch.no_grad():
        ref = m(torch.tensor(X, dtype=torch.float32)[:, None]).numpy()
    assert np.abs(live.numpy_forward(c, X) - ref).max() < 1e-4


def test_write_js_is_a_script_holding_the_export(tmp_path):
    path = live.write_js(tmp_path / "data.js")
    text = path.read_text()
    assert text.splitlines()[1].startswith("window.ZFNET_LIVE = {") and text.rstrip().endswith("};")
    content = json.loads(text[text.index("{"): text.rindex("}") + 1])
    assert content["provenance"]["epoch"] == 64 and len(content["provenance"]["sha256"]) == 64


def test_export_bad_input(model):
    with pytest.raises(TypeError, match=r"live.export: expected a cnnlib.models.ZFNetSmall, got Sequential"):
        live.export(torch.nn.Sequential(torch.nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="live.export.*eval"):
        live.export(ZFNetSmall().train())
    with pytest.raises(ValueError, match=r"live.export: .* 3 channel\(s\) of 28×28"):
        live.export(ZFNetSmall(in_channels=3).eval())
    with pytest.raises(ValueError, match="live.export: conv1.weight has values float16 cannot hold"):
        live.export(ZFNetSmall().eval())  # a fresh float32 initialisation, not a shipped snapshot
