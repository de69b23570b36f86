"""Progress bars obey both the argument and TQDM_DISABLE."""

import pytest

from cnnlib.progress import hidden


@pytest.mark.parametrize("env, progress, expected", [
    (None, True, False), (None, False, True), ("1", True, True), ("0", True, False), ("", True, False),
    ("true", True, True), ("false", True, False),
])
def test_hidden(monkeypatch, env, progress, expected):
    if env is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", env)
    assert hidden(progress) is expected
