"""What a browser downloads before the UI can start: the scripts web/dist/index.html loads
(and preloads), gzipped as a server would send them. bench/ui.py reports it against the
250 KB budget and tests/web hold the budget."""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

BUDGET_GZIP_BYTES: Final = 250 * 1024
# <script src="/assets/…"> and <link rel="modulepreload" href="/assets/…">
_ENTRY = re.compile(
    r"""<script[^>]*\bsrc="(/assets/[^"]+\.js)"|<link[^>]*\brel="modulepreload"[^>]*\bhref="(/assets/[^"]+\.js)\"""",
)


@dataclass(frozen=True)
class InitialScripts:
    files: tuple[str, ...]
    raw_bytes: int
    gzip_bytes: int


def initial_scripts(dist: Path) -> InitialScripts:
    html = (dist / "index.html").read_text()
    files = tuple(dict.fromkeys(a or b for a, b in _ENTRY.findall(html)))
    if not files:
        raise ValueError(f"{dist / 'index.html'} loads no script from /assets/")
    raw = gz = 0
    for name in files:
        data = (dist / name.lstrip("/")).read_bytes()
        raw += len(data)
        gz += len(gzip.compress(data, compresslevel=9))
    return InitialScripts(files, raw, gz)
