"""Tag every chapter cell that opens an ``ipywidgets.interact`` with ``skip-execution`` (idempotent).

    python scripts/tag_widget_cells.py          # rewrites chapters/*.ipynb in place, tags only

Why: nbclient, which executes the chapters for `make book` (jupyter-book → myst-nb → jupyter-cache → nbclient),
sometimes waits forever after an ``interact`` cell: its stand-in for the Output widget sends a message on the
kernel's shell channel while the same client waits for the cell's reply on it, and the reply is never seen (the
kernel is idle, the build hangs; jupyter/nbclient#312). Measured on chapters 0 and 3 built cold, a build counted
as hung when the kernel stayed idle 40 s while the build waited: 5 of 6 hung (the last cell run was chapter 3's
`interact`; with ipykernel 6.30.1 and 7.4.0 alike), 0 of 5 with the tag. With the tag, myst-nb's execution skips
these cells and the page shows the widget as stored by `make execute` (which executes them: it passes a skip tag
no cell has), and nbval still runs them in `make test`. The widget needs a live kernel anyway; each chapter draws
the same figure once more in the next cell.
"""

import json
import sys
from pathlib import Path

TAG = "skip-execution"


def main(paths) -> None:
    for path in paths:
        nb = json.loads(Path(path).read_text())
        n = 0
        for cell in nb["cells"]:
            if cell["cell_type"] == "code" and "interact(" in "".join(cell["source"]):
                tags = cell["metadata"].setdefault("tags", [])
                if TAG not in tags:
                    tags.append(TAG)
                    n += 1
        if n:
            Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        print(f"{path}: {n} cell(s) tagged")


if __name__ == "__main__":
    main(sys.argv[1:] or sorted(str(p) for p in Path("chapters").glob("*.ipynb")))
