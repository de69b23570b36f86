#!/usr/bin/env python3
"""What a reader and nbval find in each stored chapter: ``make audit`` (``python3 scripts/nbaudit.py chapters``).

Per notebook: code cells and how many are stored executed, whether they ran top to bottom in one kernel
(execution counts 1, 2, 3, ...), cells nbval compares (``# NBVAL_CHECK_OUTPUT``) and ignores
(``# NBVAL_IGNORE_OUTPUT``), stored errors, figures (PNG/SVG outputs), widgets, and words of prose in the
Markdown cells. Standard library only, so it runs before the venv exists. Exits 1 when a notebook has a code
cell not executed, was not run in order, stores an error or checks no cell.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FIGURE = ("image/png", "image/svg+xml")
WIDGET = "application/vnd.jupyter.widget-view+json"


def _text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def audit(path: Path) -> dict:
    """The figures of one notebook (see the module's docstring) and the list of its problems."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if c["cell_type"] == "code" and _text(c).strip()]
    counts = [c.get("execution_count") for c in code]
    outputs = [o for c in code for o in c.get("outputs", [])]
    row = {
        "code": len(code),
        "executed": sum(n is not None for n in counts),
        "in_order": counts == list(range(1, len(code) + 1)),
        "checked": sum("NBVAL_CHECK_OUTPUT" in _text(c) for c in code),
        "ignored": sum("NBVAL_IGNORE_OUTPUT" in _text(c) for c in code),
        "errors": sum(o.get("output_type") == "error" for o in outputs),
        "figures": sum(any(k in o.get("data", {}) for k in FIGURE) for o in outputs),
        "widgets": sum(WIDGET in o.get("data", {}) for o in outputs),
        "words": sum(len(_text(c).split()) for c in cells if c["cell_type"] == "markdown"),
    }
    problems = []
    if row["executed"] < row["code"]:
        problems.append(f"{row['code'] - row['executed']} code cells not executed")
    elif not row["in_order"]:
        problems.append("not executed top to bottom in one kernel")
    if row["errors"]:
        problems.append(f"{row['errors']} stored errors")
    if not row["checked"]:
        problems.append("no cell checked by nbval")
    row["problems"] = problems
    return row


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else "chapters")
    notebooks = sorted(p for p in root.glob("*.ipynb"))
    if not notebooks:
        print(f"nbaudit: no notebooks in {root}/", file=sys.stderr)
        return 1
    head = ("executed", "in order", "checked", "ignored", "errors", "figures", "widgets", "words")
    print(f"{'chapter':34}" + "".join(f"{h:>10}" for h in head))
    total = dict.fromkeys(("code", "executed", "checked", "ignored", "errors", "figures", "widgets", "words"), 0)
    failed = 0
    for path in notebooks:
        row = audit(path)
        for k in total:
            total[k] += row[k]
        failed += bool(row["problems"])
        cells = (f"{row['executed']}/{row['code']}", "yes" if row["in_order"] else "no", row["checked"],
                 row["ignored"], row["errors"], row["figures"], row["widgets"], f"{row['words']:,}")
        print(f"{path.stem:34}" + "".join(f"{c:>10}" for c in cells)
              + ("   <- " + "; ".join(row["problems"]) if row["problems"] else ""))
    cells = (f"{total['executed']}/{total['code']}", "", total["checked"], total["ignored"], total["errors"],
             total["figures"], total["widgets"], f"{total['words']:,}")
    print(f"{f'all {len(notebooks)}':34}" + "".join(f"{c:>10}" for c in cells))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
