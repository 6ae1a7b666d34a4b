"""Kind-prefixed, sortable IDs: a ULID body (48 bits of milliseconds, 80 random bits)."""

from __future__ import annotations

import itertools
import re
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.ids import PREFIXES, kind_of, new_id

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BODY = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


def _decode(body: str) -> int:
    value = 0
    for char in body:
        value = value * 32 + CROCKFORD.index(char)
    return value


def _ms(identifier: str) -> int:
    return _decode(identifier.partition("_")[2]) >> 80


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.mark.parametrize(("kind", "prefix"), sorted(PREFIXES.items()))
def test_each_kind_has_its_prefix_and_round_trips(kind: str, prefix: str) -> None:
    identifier = new_id(kind)
    assert identifier.startswith(f"{prefix}_")
    body = identifier[len(prefix) + 1 :]
    assert BODY.fullmatch(body), body
    assert len(identifier) == len(prefix) + 1 + 26
    assert kind_of(identifier) == kind


def test_known_prefixes() -> None:
    assert PREFIXES["service"] == "svc"
    assert PREFIXES["project"] == "prj"
    assert PREFIXES["environment"] == "env"
    assert PREFIXES["release"] == "rel"
    assert PREFIXES["deployment"] == "dep"


def test_prefixes_are_distinct_short_and_lowercase() -> None:
    prefixes = list(PREFIXES.values())
    assert len(set(prefixes)) == len(prefixes), "two kinds share a prefix"
    for prefix in prefixes:
        assert re.fullmatch(r"[a-z]{3}", prefix), prefix


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(KeyError):
        new_id("widget")


def test_many_quick_ids_are_unique_and_strictly_increasing() -> None:
    ids = [new_id("service") for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(a < b for a, b in itertools.pairwise(ids))
    # Many of them share a millisecond, so ordering comes from the incremented random part.
    assert len({_ms(i) for i in ids}) < len(ids)


def test_bodies_increase_across_kinds() -> None:
    kinds = sorted(PREFIXES)
    bodies = [new_id(kinds[n % len(kinds)]).partition("_")[2] for n in range(2_000)]
    assert all(a < b for a, b in itertools.pairwise(bodies))


def test_string_order_is_numeric_order() -> None:
    ids = [new_id("release") for _ in range(500)]
    values = [_decode(i.partition("_")[2]) for i in ids]
    assert values == sorted(values)
    assert len(set(values)) == len(values)
    # 130 bits of base32 hold 128 bits of ULID: the top character is at most '7'.
    assert all(i.partition("_")[2][0] <= "7" for i in ids)


def test_timestamp_is_the_time_of_the_call() -> None:
    before = _now_ms()
    identifier = new_id("deployment")
    after = _now_ms()
    assert before <= _ms(identifier) <= after


def test_threads_never_collide() -> None:
    results: list[list[str]] = [[] for _ in range(4)]

    def mint(out: list[str]) -> None:
        for _ in range(3_000):
            out.append(new_id("job_run"))

    threads = [threading.Thread(target=mint, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [i for out in results for i in out]
    assert len(set(everything)) == len(everything) == 12_000
    for out in results:
        assert all(a < b for a, b in itertools.pairwise(out))


@pytest.mark.parametrize(
    "identifier",
    [
        "",
        "svc",
        "svc_",
        "_01J9ZZZZZZZZZZZZZZZZZZZZZZ",
        "svc_01J9ZZZZZZZZZZZZZZZZZZZZZ",  # 25 characters
        "svc_01J9ZZZZZZZZZZZZZZZZZZZZZZZ",  # 27 characters
        "svc_01j9zzzzzzzzzzzzzzzzzzzzzz",  # lowercase
        "svc_01J9ZZZZZZZZZZZZZZZZZZZZZI",  # I is not Crockford
        "svc_01J9ZZZZZZZZZZZZZZZZZZZZZL",  # nor L
        "svc_01J9ZZZZZZZZZZZZZZZZZZZZZO",  # nor O
        "svc_01J9ZZZZZZZZZZZZZZZZZZZZZU",  # nor U
        "svc-01J9ZZZZZZZZZZZZZZZZZZZZZZ",
        "xyz_01J9ZZZZZZZZZZZZZZZZZZZZZZ",
        "SVC_01J9ZZZZZZZZZZZZZZZZZZZZZZ",
        "svc__1J9ZZZZZZZZZZZZZZZZZZZZZ",
        "01J9ZZZZZZZZZZZZZZZZZZZZZZ",
        "svc_01J9ZZZZZZZZZZZZZZZZZZZZZ ",
        "550e8400-e29b-41d4-a716-446655440000",
    ],
)
def test_kind_of_rejects_foreign_strings(identifier: str) -> None:
    assert kind_of(identifier) is None


def test_kind_of_accepts_a_well_formed_body() -> None:
    assert kind_of("svc_01J9ZZZZZZZZZZZZZZZZZZZZZZ") == "service"
    assert kind_of("prj_00000000000000000000000000") == "project"


def test_kind_of_does_not_trust_the_prefix_alone() -> None:
    identifier = new_id("service")
    swapped = "prj_" + identifier.partition("_")[2]
    assert kind_of(swapped) == "project"
    assert kind_of(identifier[:-1]) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_kind_of_never_raises(text: str) -> None:
    kind = kind_of(text)
    if kind is not None:
        assert text.startswith(PREFIXES[kind] + "_")
        assert BODY.fullmatch(text[len(PREFIXES[kind]) + 1 :])


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(PREFIXES)))
def test_kind_of_inverts_new_id(kind: str) -> None:
    assert kind_of(new_id(kind)) == kind
