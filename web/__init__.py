"""The single-page UI, served at / by the API server.

Until the UI is built (web/dist), / answers with a page that says how to reach Enclii
meanwhile, never with a 404.
"""

from __future__ import annotations

from importlib import resources


def placeholder_page() -> str:
    return resources.files(__package__).joinpath("placeholder.html").read_text()
