"""The store's exception hierarchy."""

from __future__ import annotations


class StoreError(Exception):
    """Base of everything the store raises on purpose."""


class ConfigurationError(StoreError):
    """A database URL or data directory that cannot be used, with the forms that work."""


class SpecError(StoreError):
    """A Service Spec document that cannot be accepted; ``problems`` says every reason."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.render() for p in problems))


def dotted_path(path: tuple[str | int, ...]) -> str:
    """``("spec", "routes", 0, "host")`` → ``spec.routes[0].host``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


class SpecProblem:
    """One thing wrong with a Service Spec: where (path into the document, line) and what."""

    __slots__ = ("line", "message", "segments")

    def __init__(
        self, segments: tuple[str | int, ...], message: str, line: int | None = None
    ) -> None:
        self.segments = segments
        self.message = message
        self.line = line

    @property
    def path(self) -> str:
        return dotted_path(self.segments)

    def render(self) -> str:
        where = f"{self.path}: " if self.path else ""
        line = f" (line {self.line})" if self.line is not None else ""
        return f"{where}{self.message}{line}"

    def __repr__(self) -> str:
        return f"SpecProblem({self.render()!r})"
