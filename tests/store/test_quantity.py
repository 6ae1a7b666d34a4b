"""Resource quantities: CPU in millicores, sizes in bytes, and back to the shortest form.

Tests whose docstrings start with "Regression" pin down bugs found and fixed.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.quantity import QuantityError, byte_size, cpu_millicores, format_bytes

BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


@pytest.mark.parametrize(
    ("value", "millicores"),
    [
        ("500m", 500),
        ("1m", 1),
        ("2", 2000),
        ("0.25", 250),
        ("0.001", 1),
        ("1.5", 1500),
        ("1000m", 1000),
        ("1.0", 1000),
        (" 250m ", 250),
        ("250 m", 250),
        (2, 2000),
        (0.5, 500),
        (1.25, 1250),
        ("64", 64000),
    ],
)
def test_cpu_millicores(value: str | int | float, millicores: int) -> None:
    result = cpu_millicores(value)
    assert result == millicores
    assert type(result) is int


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "'' is not a quantity (examples: 500m, 2, 512Mi, 10Gi)"),
        ("abc", "'abc' is not a quantity (examples: 500m, 2, 512Mi, 10Gi)"),
        ("m", "'m' is not a quantity (examples: 500m, 2, 512Mi, 10Gi)"),
        ("-1", "'-1' is not a quantity (examples: 500m, 2, 512Mi, 10Gi)"),
        ("-500m", "'-500m' is not a quantity (examples: 500m, 2, 512Mi, 10Gi)"),
        ("1e3", "'1e3' is not a quantity (examples: 500m, 2, 512Mi, 10Gi)"),
        (".5", "'.5' is not a quantity (examples: 500m, 2, 512Mi, 10Gi)"),
        ("1,5", "'1,5' is not a quantity (examples: 500m, 2, 512Mi, 10Gi)"),
        ("1Gi", "CPU '1Gi': use cores (2, 0.5) or millicores (500m)"),
        ("500M", "CPU '500M': use cores (2, 0.5) or millicores (500m)"),
        ("0", "CPU '0' must be greater than zero"),
        ("0m", "CPU '0m' must be greater than zero"),
        ("0.0", "CPU '0.0' must be greater than zero"),
        (0, "CPU 0 must be greater than zero"),
        ("0.0001", "CPU '0.0001' is finer than one millicore"),
        ("1.5m", "CPU '1.5m' is finer than one millicore"),
        ("0.1234", "CPU '0.1234' is finer than one millicore"),
    ],
)
def test_cpu_millicores_errors(value: str | int, message: str) -> None:
    with pytest.raises(QuantityError) as caught:
        cpu_millicores(value)
    assert str(caught.value) == message


def test_quantity_error_is_a_value_error() -> None:
    assert issubclass(QuantityError, ValueError)
    with pytest.raises(ValueError):
        byte_size("nope")


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("512Mi", 536870912),
        ("1Ki", 1024),
        ("1Gi", 2**30),
        ("10Gi", 10 * 2**30),
        ("2Ti", 2 * 2**40),
        ("1Pi", 2**50),
        ("1Ei", 2**60),
        ("1k", 1000),
        ("1G", 10**9),
        ("3M", 3 * 10**6),
        ("1T", 10**12),
        ("1P", 10**15),
        ("1E", 10**18),
        ("100", 100),
        ("1", 1),
        (100, 100),
        ("1.5Gi", 1610612736),
        ("0.5Ki", 512),
        (" 64 Mi ", 64 * 2**20),
    ],
)
def test_byte_size(value: str | int, size: int) -> None:
    result = byte_size(value)
    assert result == size
    assert type(result) is int


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "'' is not a quantity (examples: 500m, 2, 512Mi, 10Gi)"),
        ("Mi", "'Mi' is not a quantity (examples: 500m, 2, 512Mi, 10Gi)"),
        ("-5Mi", "'-5Mi' is not a quantity (examples: 500m, 2, 512Mi, 10Gi)"),
        ("5 Mi 3", "'5 Mi 3' is not a quantity (examples: 500m, 2, 512Mi, 10Gi)"),
        ("5Q", "size '5Q' has an unknown unit 'Q'; use Ki, Mi, Gi, Ti (or k, M, G, T)"),
        ("5mi", "size '5mi' has an unknown unit 'mi'; use Ki, Mi, Gi, Ti (or k, M, G, T)"),
        ("5m", "size '5m' has an unknown unit 'm'; use Ki, Mi, Gi, Ti (or k, M, G, T)"),
        ("5KB", "size '5KB' has an unknown unit 'KB'; use Ki, Mi, Gi, Ti (or k, M, G, T)"),
        ("5K", "size '5K' has an unknown unit 'K'; use Ki, Mi, Gi, Ti (or k, M, G, T)"),
        ("0", "size '0' must be greater than zero"),
        ("0Mi", "size '0Mi' must be greater than zero"),
        ("0.0Gi", "size '0.0Gi' must be greater than zero"),
        (0, "size 0 must be greater than zero"),
    ],
)
def test_byte_size_errors(value: str | int, message: str) -> None:
    with pytest.raises(QuantityError) as caught:
        byte_size(value)
    assert str(caught.value) == message


def test_byte_size_never_returns_zero() -> None:
    """Regression (store/quantity.py, byte_size): "0.5" passes the `result <= 0` check as
    Decimal('0.5') and is then truncated by int() to 0, so memory: "0.5" is accepted as a
    zero-byte limit. Expected a QuantityError (or at least a positive size)."""
    try:
        size = byte_size("0.5")
    except QuantityError:
        return
    assert size > 0, f"byte_size('0.5') returned {size}"


def test_byte_size_is_exact_for_long_numbers() -> None:
    """Regression (store/quantity.py, byte_size): `number * scale` uses Decimal's default 28-digit
    context, so a 31-digit size is rounded: byte_size("1000000000000000000000000000001")
    returns 10**30. Expected the exact integer (or a QuantityError for absurd sizes)."""
    value = 10**30 + 1
    try:
        size = byte_size(str(value))
    except QuantityError:
        return
    assert size == value


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (536870912, "512Mi"),
        (1024, "1Ki"),
        (1536, "1536"),
        (1, "1"),
        (1000, "1000"),
        (2**30, "1Gi"),
        (3 * 2**29, "1536Mi"),
        (2**60, "1Ei"),
        (2**70, "1024Ei"),
        (10 * 2**30, "10Gi"),
        (10**9, "1000000000"),
        (2**20 + 2**10, "1025Ki"),
    ],
)
def test_format_bytes(size: int, text: str) -> None:
    assert format_bytes(size) == text


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2**20), st.sampled_from(sorted(BINARY)))
def test_binary_units_round_trip(number: int, unit: str) -> None:
    text = f"{number}{unit}"
    size = byte_size(text)
    assert size == number * BINARY[unit]
    formatted = format_bytes(size)
    assert byte_size(formatted) == size
    if number % 1024 != 0 or unit == "Ei":
        # Nothing shorter exists, so the form written is the form printed.
        assert formatted == text


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2**80))
def test_format_bytes_is_exact_and_shortest(size: int) -> None:
    formatted = format_bytes(size)
    assert byte_size(formatted) == size
    digits = formatted.rstrip("KMGTPEi")
    unit = formatted[len(digits) :]
    assert unit == "" or unit in BINARY
    assert int(digits) > 0
    if unit != "Ei":
        # A larger unit would have been chosen if it divided the size.
        assert int(digits) % 1024 != 0 or (unit == "" and size % 1024 != 0)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**6), st.sampled_from(sorted(DECIMAL)))
def test_decimal_units(number: int, unit: str) -> None:
    assert byte_size(f"{number}{unit}") == number * DECIMAL[unit]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**6))
def test_cpu_millicores_round_trips(millicores: int) -> None:
    assert cpu_millicores(f"{millicores}m") == millicores
    cores, rest = divmod(millicores, 1000)
    assert cpu_millicores(f"{cores}.{rest:03d}") == millicores


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12))
def test_parsers_raise_only_quantity_error(text: str) -> None:
    for parse in (cpu_millicores, byte_size):
        try:
            value = parse(text)
        except QuantityError as exc:
            assert str(exc)
        else:
            assert isinstance(value, int) and value > 0
