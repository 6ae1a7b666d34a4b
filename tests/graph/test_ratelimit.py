"""Token-bucket rate limits: the limiter on its own with a controllable clock, then through
the real ASGI app (product spec 7.2: 60 requests a minute, burst 120, per token)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graph.app import AppState, create_app
from resolvers.bootstrap import Bootstrap
from resolvers.context import Context
from resolvers.identity import ratelimit
from resolvers.identity.authenticate import Authenticator
from resolvers.identity.ratelimit import DEFAULT_BURST, RateLimiter
from resolvers.identity.tokens import create_token

CHEAP_QUERY = {"query": "{ __typename }"}


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- the limiter on its own ---------------------------------------------------------------


def test_defaults_are_the_product_spec() -> None:
    limiter = RateLimiter()
    assert limiter.burst == 120
    assert limiter.rate == 1.0  # 60 a minute


def test_burst_then_refusal_with_exact_retry_after() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    decisions = [limiter.take("k") for _ in range(DEFAULT_BURST)]
    assert all(d.allowed for d in decisions)
    assert [d.remaining for d in decisions] == list(range(DEFAULT_BURST - 1, -1, -1))
    assert {d.limit for d in decisions} == {DEFAULT_BURST}
    assert [d.retry_after for d in decisions] == [0.0] * DEFAULT_BURST

    refused = limiter.take("k")
    assert not refused.allowed
    assert refused.remaining == 0
    assert refused.retry_after == 1.0
    assert refused.reset_after == 120.0
    # Refusals take nothing: asking again at once gets the same answer.
    assert limiter.take("k") == refused


def test_retry_after_shrinks_as_the_bucket_refills() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    for _ in range(DEFAULT_BURST):
        limiter.take("k")
    clock.advance(0.25)
    refused = limiter.take("k")
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(0.75)
    assert refused.reset_after == pytest.approx(119.75)


def test_refill_is_one_request_a_second() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    for _ in range(DEFAULT_BURST):
        limiter.take("k")
    clock.advance(1.0)
    assert limiter.take("k").allowed
    assert not limiter.take("k").allowed
    clock.advance(5.0)
    assert [limiter.take("k").allowed for _ in range(6)] == [True] * 5 + [False]


def test_refill_never_exceeds_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    limiter.take("k")
    clock.advance(3_600.0)
    fresh = limiter.take("k")
    assert fresh.remaining == DEFAULT_BURST - 1
    assert fresh.reset_after == 1.0


def test_reset_after_is_the_time_to_a_full_bucket() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_minute=30, burst=10, clock=clock)  # one every 2 s
    for _ in range(4):
        decision = limiter.take("k")
    assert decision.remaining == 6
    assert decision.reset_after == 8.0
    clock.advance(8.0)
    full = limiter.take("k")
    assert full.remaining == 9
    assert full.reset_after == 2.0


def test_a_clock_that_steps_back_refills_nothing() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    for _ in range(DEFAULT_BURST):
        limiter.take("k")
    clock.advance(-50.0)
    assert not limiter.take("k").allowed


def test_keys_have_their_own_buckets() -> None:
    limiter = RateLimiter(burst=2, clock=FakeClock())
    assert [limiter.take("a").allowed for _ in range(3)] == [True, True, False]
    assert limiter.take("b").allowed


@pytest.mark.parametrize(("rate", "burst"), [(0, 10), (-1, 10), (60, 0)])
def test_nonsense_limits_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        RateLimiter(rate_per_minute=rate, burst=burst)


def test_eviction_drops_only_full_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "MAX_BUCKETS", 50)
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    for _ in range(DEFAULT_BURST):
        limiter.take("hot")
    for i in range(49):
        limiter.take(f"idle-{i}")  # 119 left: full again after one second
    clock.advance(1.0)
    limiter.take("newcomer")  # the table is full: the idle buckets go
    assert set(limiter._buckets) == {"hot", "newcomer"}
    # The hot bucket kept its state: one request refilled, then refused.
    assert limiter.take("hot").allowed
    assert not limiter.take("hot").allowed


def test_eviction_at_the_real_table_size() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    for i in range(ratelimit.MAX_BUCKETS):
        limiter.take(f"k{i}")
    assert len(limiter._buckets) == ratelimit.MAX_BUCKETS
    clock.advance(1.0)
    assert limiter.take("one-more").allowed
    assert len(limiter._buckets) == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.floats(0, 5, allow_nan=False)),
        max_size=200,
    )
)
def test_no_key_ever_gets_more_than_burst_plus_refill(steps: list[tuple[str, float]]) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_minute=60, burst=5, clock=clock)
    allowed = {"a": 0, "b": 0}
    for key, wait in steps:
        clock.advance(wait)
        decision = limiter.take(key)
        assert 0 <= decision.remaining <= 5
        assert (decision.retry_after == 0) == decision.allowed
        allowed[key] += decision.allowed
    elapsed = clock.now - 1_000.0
    for count in allowed.values():
        assert count <= 5 + math.floor(elapsed * 1.0 + 1e-9)


# -- through the app ----------------------------------------------------------------------


@dataclass
class LimitedApp:
    client: httpx.AsyncClient
    clock: FakeClock
    token: str

    async def get(self, token: str | None = None) -> httpx.Response:
        return await self.client.post(
            "/graphql",
            json=CHEAP_QUERY,
            headers={"authorization": f"Bearer {token or self.token}"},
        )


@pytest.fixture
async def limited(ctx: Context, owner: Bootstrap, token: str) -> AsyncIterator[LimitedApp]:
    """The app with the product's default limits and a clock the test moves."""
    clock = FakeClock()
    authenticator = Authenticator(ctx.store, owner.owner.account_id)
    state = AppState(
        store=ctx.store, hub=ctx.hub, authenticator=authenticator, limiter=RateLimiter(clock=clock)
    )
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://enclii.test") as client:
        yield LimitedApp(client, clock, token)
    await state.connections.close()
    await authenticator.close()


def _headers(response: httpx.Response) -> tuple[int, int, int]:
    return (
        int(response.headers["ratelimit-limit"]),
        int(response.headers["ratelimit-remaining"]),
        int(response.headers["ratelimit-reset"]),
    )


async def test_burst_of_120_then_429(limited: LimitedApp) -> None:
    responses = [await limited.get() for _ in range(DEFAULT_BURST)]
    assert [r.status_code for r in responses] == [200] * DEFAULT_BURST
    assert all(r.json() == {"data": {"__typename": "Query"}} for r in responses)
    seen = [_headers(r) for r in responses]
    assert [limit for limit, _, _ in seen] == [120] * DEFAULT_BURST
    assert [remaining for _, remaining, _ in seen] == list(range(119, -1, -1))
    assert [reset for _, _, reset in seen] == list(range(1, 121))
    assert all("retry-after" not in r.headers for r in responses)

    refused = await limited.get()
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert _headers(refused) == (120, 0, 120)
    body = refused.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"] == {"code": "RATE_LIMITED", "retryAfter": 1}
    assert "retry in 1s" in body["errors"][0]["message"]


async def test_one_second_buys_exactly_one_more(limited: LimitedApp) -> None:
    for _ in range(DEFAULT_BURST):
        assert (await limited.get()).status_code == 200
    assert (await limited.get()).status_code == 429
    limited.clock.advance(1.0)
    again = await limited.get()
    assert again.status_code == 200
    assert _headers(again)[1] == 0
    assert (await limited.get()).status_code == 429


async def test_retry_after_is_whole_seconds_rounded_up(limited: LimitedApp) -> None:
    for _ in range(DEFAULT_BURST):
        await limited.get()
    limited.clock.advance(0.4)
    refused = await limited.get()
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"  # 0.6 s, never "0"


async def test_another_token_is_unaffected(limited: LimitedApp, ctx: Context) -> None:
    other = await create_token(ctx, "second", ["*"], None, None)
    for _ in range(DEFAULT_BURST):
        await limited.get()
    assert (await limited.get()).status_code == 429
    fresh = await limited.get(other.secret)
    assert fresh.status_code == 200
    assert _headers(fresh) == (120, 119, 1)
    assert (await limited.get()).status_code == 429


async def test_unauthenticated_requests_are_refused_before_the_limiter(
    limited: LimitedApp,
) -> None:
    for _ in range(DEFAULT_BURST):
        await limited.get()
    refused = await limited.client.post(
        "/graphql", json=CHEAP_QUERY, headers={"authorization": "Bearer nonsense"}
    )
    assert refused.status_code == 401
    assert "ratelimit-remaining" not in refused.headers


async def test_a_concurrent_burst_gets_exactly_the_burst(limited: LimitedApp) -> None:
    responses = await asyncio.gather(*(limited.get() for _ in range(200)))
    codes = [r.status_code for r in responses]
    assert codes.count(200) == DEFAULT_BURST
    assert codes.count(429) == 200 - DEFAULT_BURST
    remaining = sorted(int(r.headers["ratelimit-remaining"]) for r in responses if r.is_success)
    assert remaining == list(range(DEFAULT_BURST))
