"""The package's layout, read from its source: no import circles, one home for the shipped files' manifests and
data root (:mod:`cnnlib.snapshots`), and no public function or class that no test names."""

import ast
import re
from pathlib import Path

import cnnlib

PACKAGE = Path(cnnlib.__file__).resolve().parent
SCRIPTS = PACKAGE.parent / "scripts"


def _trees(folder: Path) -> dict[str, ast.Module]:
    return {f.stem: ast.parse(f.read_text(), str(f)) for f in sorted(folder.glob("*.py"))}


def module_imports(tree: ast.Module) -> set[str]:
    """The cnnlib modules a module imports when it is itself imported (its top-level ``from . import``s)."""
    out = set()
    for node in tree.body:
        for sub in (node.body if isinstance(node, (ast.If, ast.Try)) else [node]):
            if isinstance(sub, ast.ImportFrom) and sub.level == 1:
                out |= {sub.module.split(".")[0]} if sub.module else {a.name for a in sub.names}
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle of ``graph`` ({module: modules it imports}), each once, starting at its smallest name."""
    found = []

    def walk(start, node, path):
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                found.append(path)
            elif nxt > start and nxt not in path:
                walk(start, nxt, path + [nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return found


def test_cycles_finds_a_circle_and_only_circles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"hooks": {"models"}, "models": {"hooks"}}) == [["hooks", "models"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_module_of_cnnlib_imports_itself_round_a_circle():
    graph = {name: module_imports(tree) for name, tree in _trees(PACKAGE).items()}
    assert graph["topk"] >= {"photos", "snapshots"}  # the graph is read (a sample of known edges)
    assert cycles(graph) == []


def _code_strings(tree: ast.Module) -> list[str]:
    """The string constants of a module that are not docstrings."""
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def test_only_snapshots_opens_a_manifest_or_finds_the_data_folder():
    """One writer and one reader of every ``MANIFEST.json`` (``snapshots.record_in_manifest``,
    ``snapshots.manifest_entries``), one data root (``snapshots.DATA_DIR``, ``$CNNLIB_DATA``): no other module or
    script names the file or builds a path from its own location into ``data/``."""
    trees = {f"cnnlib/{k}": v for k, v in _trees(PACKAGE).items()} | {f"scripts/{k}": v for k, v in
                                                                     _trees(SCRIPTS).items()}
    manifest = sorted(name for name, tree in trees.items() if "MANIFEST.json" in _code_strings(tree))
    assert manifest == ["cnnlib/snapshots"]
    own_root = sorted(name for name, tree in trees.items() if name.startswith("cnnlib/") and any(
        isinstance(n, ast.Name) and n.id == "__file__" for n in ast.walk(tree)))
    assert own_root == ["cnnlib/snapshots"]


def public_callables(tree: ast.Module) -> list[str]:
    """The module's public functions and classes (top-level, no leading underscore)."""
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")]


def test_every_public_function_and_class_is_named_in_a_test():
    tests = "\n".join(f.read_text() for f in sorted(Path(__file__).parent.glob("test_*.py")))
    untested = [f"{module}.{name}" for module, tree in _trees(PACKAGE).items() for name in public_callables(tree)
                if not re.search(rf"\b{name}\b", tests)]
    assert not untested, f"public but named in no test (test them, or make them private): {untested}"
    assert public_callables(ast.parse("def f(): pass\nclass C: pass\ndef _g(): pass\nX = 1")) == ["f", "C"]

