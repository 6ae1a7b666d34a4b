"""The single-page UI, served at / by the API server.

Vite builds it into ``web/dist`` (``index.html`` and ``assets/`` with hashed names). Until
that build exists, the UI's pages answer with a page that says how to build it and how to
reach Enclii meanwhile, never with a 404.
"""

from __future__ import annotations

import html
import os
from importlib import resources
from pathlib import Path
from typing import Final

__all__ = ["DIST_ENV", "dist_dir", "placeholder_page"]

DIST_ENV: Final = "ENCLII_WEB_DIST"
_DEFAULT_DIST: Final = Path(__file__).resolve().parent / "dist"


def dist_dir() -> Path | None:
    """The UI's build (``$ENCLII_WEB_DIST``, or ``web/dist``), or None until it holds an
    ``index.html``.

    Asked on every request, so a UI built while the server runs is served at the next
    reload, without a restart."""
    configured = os.environ.get(DIST_ENV)
    root = Path(configured).expanduser() if configured else _DEFAULT_DIST
    return root if (root / "index.html").is_file() else None


def placeholder_page(origin: str = "http://127.0.0.1:8000") -> str:
    """The page shown until the UI is built; its examples address ``origin`` (this
    server, as the browser reached it)."""
    page = resources.files(__package__).joinpath("placeholder.html").read_text()
    return page.replace("{{origin}}", html.escape(origin))
