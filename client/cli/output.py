"""How the CLI prints: results on stdout (a table or text for people; one JSON document with
``--json``; NDJSON, a document per line, for streams), everything else on stderr. Human
progress — spinners, build and deploy phases — only when stderr is a terminal and CI is not
set, so logs of CI jobs stay clean."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass
class Output:
    json: bool = False

    def __post_init__(self) -> None:
        self.err = Console(stderr=True, soft_wrap=True, highlight=False)
        # Piped output is read by programs and people with wide windows: never wrap it.
        width = None if sys.stdout.isatty() else 10_000
        self.out = Console(soft_wrap=True, highlight=False, width=width)
        self.progress_on = not in_ci() and sys.stderr.isatty() and not self.json
        self.streaming = False

    # -- stdout -----------------------------------------------------------------------------

    def document(self, value: Any) -> None:
        """The one JSON document of a ``--json`` run."""
        sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
        sys.stdout.flush()

    def record(self, value: Any) -> None:
        """One line of an NDJSON stream, flushed at once (a pipe reader sees it now)."""
        self.streaming = True
        sys.stdout.write(json.dumps(value, separators=(",", ":"), default=str) + "\n")
        sys.stdout.flush()

    def final(self, value: Any) -> None:
        """The closing document: a line of the stream if one was started, else a document."""
        if self.streaming:
            self.record(value)
        else:
            self.document(value)

    def line(self, text: str) -> None:
        """Text as it is: no markup, no emoji codes (log lines are other people's words)."""
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*("" if cell is None else str(cell) for cell in row))
        self.out.print(table)

    # -- stderr -----------------------------------------------------------------------------

    def note(self, text: str) -> None:
        """Something a person should know (not progress): always said, on stderr."""
        self.err.print(text, markup=False)

    def error(self, text: str) -> None:
        self.err.print(f"[red]error:[/red] {_escape(text)}")

    def hint(self, text: str) -> None:
        self.err.print(f"[dim]{_escape(text)}[/dim]")

    def step(self, text: str) -> None:
        """A progress line (a phase reached): only for a person at a terminal."""
        if self.progress_on:
            self.err.print(f"[cyan]-[/cyan] {_escape(text)}")

    @contextlib.contextmanager
    def spinner(self, text: str) -> Iterator[None]:
        if not self.progress_on:
            yield
            return
        with self.err.status(_escape(text)):
            yield


def _escape(text: str) -> str:
    return text.replace("[", r"\[")
