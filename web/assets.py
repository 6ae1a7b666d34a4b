"""What a browser downloads before the UI can start: the scripts web/dist/index.html loads
(and preloads), gzipped as a server would send them. bench/ui.py reports it against the
budget and tests/web/test_build.py holds the budget."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Final

BUDGET_GZIP_BYTES: Final = 250_000  # the 250 KB, in kB of 1,000 bytes


class _StartAssets(HTMLParser):
    """The scripts and modulepreloads an index.html loads at start, and its stylesheets."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        rel = (a.get("rel") or "").lower().split()
        if tag == "script" and a.get("src"):
            self.scripts.append(a["src"] or "")
        elif tag == "link" and "modulepreload" in rel and a.get("href"):
            self.scripts.append(a["href"] or "")
        elif tag == "link" and "stylesheet" in rel and a.get("href"):
            self.styles.append(a["href"] or "")


def gzipped(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))


@dataclass
class Bundle:
    scripts: list[tuple[str, int, int]]  # (name, bytes, gzipped bytes) loaded at start
    styles: list[tuple[str, int, int]]
    lazy: list[tuple[str, int, int]]  # other .js in assets/: loaded later, if at all

    @property
    def js_gzip(self) -> int:
        return sum(g for _, _, g in self.scripts)

    @property
    def js_raw(self) -> int:
        return sum(r for _, r, _ in self.scripts)


def bundle(dist: Path) -> Bundle:
    parser = _StartAssets()
    parser.feed((dist / "index.html").read_text())

    def sized(urls: list[str]) -> list[tuple[str, int, int]]:
        found = []
        for url in dict.fromkeys(urls):
            path = url.split("?", 1)[0].split("#", 1)[0]
            if not path.startswith("/assets/"):
                continue  # another origin, or not part of the build
            file = dist / path.lstrip("/")
            found.append((file.name, file.stat().st_size, gzipped(file)))
        return found

    scripts = sized(parser.scripts)
    if not scripts:
        raise ValueError(f"{dist / 'index.html'} loads no script under /assets/")
    start = {name for name, _, _ in scripts}
    lazy = [
        (f.name, f.stat().st_size, gzipped(f))
        for f in sorted((dist / "assets").glob("*.js"))
        if f.name not in start
    ]
    return Bundle(scripts, sized(parser.styles), lazy)
