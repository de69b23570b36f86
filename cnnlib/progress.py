"""Progress bars: shown while a student runs a chapter, never stored in an executed notebook.

Every long loop of cnnlib takes ``progress: bool`` and passes ``disable=hidden(progress)`` to ``tqdm``.
``TQDM_DISABLE=1`` in the environment (set by ``make execute``, ``make book`` and ``make test``) hides them all,
so no progress bar ends up in a stored notebook or the rendered book; an explicit ``disable=not progress``
would override that variable, which is why this helper exists.
"""

from __future__ import annotations

import os


def hidden(progress: bool) -> bool:
    """``True`` (hide the bar) when ``progress`` is false or ``TQDM_DISABLE`` is set to anything but ``""``/``0``."""
    return not progress or os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")
