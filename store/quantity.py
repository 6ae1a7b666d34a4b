"""Kubernetes-style resource quantities: ``500m`` CPU, ``512Mi`` memory, ``10Gi`` disk.

One parser for the Service Spec and the environment limits, so "1Gi" means the same thing
everywhere.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation
from typing import Final

_BINARY: Final = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: Final = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_PATTERN: Final = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*")
# Exact arithmetic for any number a person could type (the default context keeps 28 digits).
_EXACT: Final = Context(prec=200)


class QuantityError(ValueError):
    pass


def _split(value: str | int | float) -> tuple[Decimal, str]:
    match = _PATTERN.fullmatch(str(value))
    if not match:
        raise QuantityError(f"{value!r} is not a quantity (examples: 500m, 2, 512Mi, 10Gi)")
    try:
        return Decimal(match.group(1)), match.group(2)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
        raise QuantityError(f"{value!r} is not a number") from exc


def cpu_millicores(value: str | int | float) -> int:
    """``500m`` → 500, ``2`` → 2000, ``0.25`` → 250."""
    number, unit = _split(value)
    if unit == "m":
        millis = number
    elif unit == "":
        millis = _EXACT.multiply(number, Decimal(1000))
    else:
        raise QuantityError(f"CPU {value!r}: use cores (2, 0.5) or millicores (500m)")
    if millis <= 0:
        raise QuantityError(f"CPU {value!r} must be greater than zero")
    if millis != millis.to_integral_value():
        raise QuantityError(f"CPU {value!r} is finer than one millicore")
    return int(millis)


def byte_size(value: str | int | float) -> int:
    """``512Mi`` → 536870912, ``1G`` → 10**9, ``100`` → 100 bytes."""
    number, unit = _split(value)
    if unit in _BINARY:
        scale = _BINARY[unit]
    elif unit in _DECIMAL:
        scale = _DECIMAL[unit]
    elif unit == "":
        scale = 1
    else:
        raise QuantityError(
            f"size {value!r} has an unknown unit {unit!r}; use Ki, Mi, Gi, Ti (or k, M, G, T)"
        )
    result = _EXACT.multiply(number, Decimal(scale))
    if result <= 0:
        raise QuantityError(f"size {value!r} must be greater than zero")
    if result != result.to_integral_value():
        raise QuantityError(f"size {value!r} is not a whole number of bytes")
    return int(result)


def format_bytes(size: int) -> str:
    """The shortest exact binary form: 536870912 → ``512Mi``."""
    if size == 0:
        return "0"
    for unit, scale in sorted(_BINARY.items(), key=lambda item: -item[1]):
        if size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)
