"""The web UI against its three targets, in headless Chromium on a real `enclii serve`.

1. Initial JavaScript <= 250 KB gzipped: every script and modulepreload that web/dist's
   index.html loads at start (under /assets/), each gzipped at level 9 as a server would,
   summed. Nothing is built here: build the UI first (`npm --prefix web run build`).
2. The dashboard of 200 services rendered <= 1 s: a real `enclii serve` (SQLite in a temp
   dir) seeded with 1 project x 3 environments x 200 services (each with a release, a
   runtime and a route; no processes, so the platform retires the runtimes: the figures are
   taken once it has settled). Signed in once through `/#token=`, then a full load
   of `/`, N times after 2 warm-ups, each timed inside the page: from navigation start
   (`performance.timeOrigin`) to the moment the services table first has its 200 rows
   (a MutationObserver installed before any script of the page runs), with the next frame
   after it ("painted") beside it. Loads come from the browser's cache (the assets are
   immutable, as for a returning user); then the same with the cache disabled ("cold").
3. A live log view keeps up with 1,000 lines/s: a real service (built from a temp folder,
   deployed through the GraphQL API) prints `line 000001 …` at a steady --rate for
   --seconds once asked through the router. Its logs view is open before the burst, so the
   lines arrive through the `logs` subscription. Measured: lines printed (the app's own
   count), stored (the `logs` query, paged), delivered over the websocket and shown by the
   page (its "N lines" status, and the last row must be the last line printed); the longest
   gap between animation frames, frames later than 100 ms, and long tasks; the page's main
   thread time and the CPU each party used meanwhile (on a shared 2-vCPU machine, other
   processes' load shows up as frame gaps). Passes when the page shows every printed line
   within --catch-up seconds of the burst's end and no frame gap reaches 250 ms.

    python bench/ui.py [--dist web/dist] [--runs 10] [--rate 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import psutil
from playwright.async_api import Browser, CDPSession, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import REPO, Server, database, machine, percentile, seed, server
from bench._platform import CREATE_RELEASE, deploy, gql, host_of, success, until_healthy
from web import DIST_ENV
from web.assets import BUDGET_GZIP_BYTES, Bundle, bundle

TARGET_RENDER_MS: Final = 1000.0
MAX_FRAME_GAP_MS: Final = 250.0
SLOW_FRAME_MS: Final = 100.0
SERVICES: Final = 200
WARMUPS: Final = 2
DEADLINE_S: Final = 120.0
PAGE_DEADLINE_MS: Final = 30_000
CHROMIUM: Final = "/usr/bin/chromium"
CHROMIUM_ARGS: Final = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOG_SERVICE: Final = "ticker"

# -- 1. initial JavaScript -------------------------------------------------------------------


def kb(n: float) -> str:
    return f"{n / 1000:.1f} KB"


# -- 2. the dashboard -----------------------------------------------------------------------

# Installed before any script of each page: the moment the services table first has its
# rows (a mutation observer's callback runs right after the DOM change, before the frame
# that paints it), and the end of the next frame (a task posted from its animation frame
# runs once that frame is done).
DASHBOARD_PROBE: Final = """
(() => {
  const selector = '[data-testid="dashboard-services"] tbody tr';
  const want = __WANT__;
  const probe = { rows: null, count: 0, painted: null };
  window.__dashboard = probe;
  const observer = new MutationObserver(() => {
    if (probe.rows !== null) return;
    const n = document.querySelectorAll(selector).length;
    if (n < want) return;
    probe.rows = performance.now();
    probe.count = n;
    observer.disconnect();
    requestAnimationFrame(() => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => { probe.painted = performance.now(); };
      channel.port2.postMessage(0);
    });
  });
  observer.observe(document, { childList: true, subtree: true });
})();
""".replace("__WANT__", str(SERVICES))

# Where a load's time went, from the page's own timings (ms after navigation start).
TIMINGS: Final = """
() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const resources = performance.getEntriesByType('resource');
  const script = resources.find((r) => r.name.includes('/assets/') && r.name.endsWith('.js'));
  const queries = resources
    .filter((r) => new URL(r.name).pathname === '/graphql')
    .map((r) => [r.startTime, r.responseEnd, r.transferSize, r.encodedBodySize]);
  return {
    rows: window.__dashboard.rows,
    painted: window.__dashboard.painted,
    count: window.__dashboard.count,
    html: nav ? nav.responseEnd : null,
    script: script ? script.responseEnd : null,
    queries,
  };
}
"""


@dataclass
class Loads:
    rows: list[float]
    painted: list[float]
    html: list[float]
    script: list[float]
    viewer: list[tuple[float, float]]  # the Viewer query: (start, end)
    dashboard: list[tuple[float, float]]  # the Dashboard query: (start, end)
    dashboard_bytes: int
    cold_first: float  # the very first load: empty cache, server caches cold


async def dashboard_loads(
    browser: Browser, srv: Server, token: str, runs: int, cold: bool
) -> Loads:
    context = await browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    try:
        await context.add_init_script(DASHBOARD_PROBE)
        page = await context.new_page()
        page.set_default_timeout(PAGE_DEADLINE_MS)
        if cold:
            cdp = await context.new_cdp_session(page)
            await cdp.send("Network.enable")
            await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        # Signing in: the app takes the token from the fragment into sessionStorage.
        await page.goto(f"{srv.url}/#token={token}")
        first = await one_load(page, navigate=False)
        samples = []
        for i in range(WARMUPS + runs):
            timing = await one_load(page, navigate=True, url=f"{srv.url}/")
            if i >= WARMUPS:
                samples.append(timing)
    finally:
        await context.close()
    return Loads(
        rows=[s["rows"] for s in samples],
        painted=[s["painted"] for s in samples],
        html=[s["html"] for s in samples],
        script=[s["script"] for s in samples],
        viewer=[tuple(s["queries"][0][:2]) for s in samples],
        dashboard=[tuple(s["queries"][-1][:2]) for s in samples],
        dashboard_bytes=int(samples[-1]["queries"][-1][3] or 0),
        cold_first=float(first["rows"]),
    )


async def one_load(page: Page, *, navigate: bool, url: str = "") -> dict[str, Any]:
    if navigate:
        await page.goto(url)
    try:
        await page.wait_for_function(
            "() => window.__dashboard && window.__dashboard.painted !== null",
            timeout=PAGE_DEADLINE_MS,
        )
    except PlaywrightTimeoutError:
        shows = await page.evaluate(
            "() => [document.querySelectorAll('[data-testid=\"dashboard-services\"] tbody tr')"
            ".length, (document.body ? document.body.innerText : '').slice(0, 300)]"
        )
        raise RuntimeError(
            f"the dashboard did not show {SERVICES} services within {PAGE_DEADLINE_MS} ms: "
            f"{shows[0]} rows; the page says {shows[1]!r}"
        ) from None
    timing: dict[str, Any] = await page.evaluate(TIMINGS)
    if timing["count"] != SERVICES:
        raise RuntimeError(f"the dashboard shows {timing['count']} services, not {SERVICES}")
    if len(timing["queries"]) < 2:
        raise RuntimeError(f"expected the Viewer and Dashboard queries, saw {timing['queries']}")
    return timing


def spread(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):6.0f} ms  P95 {percentile(values, 95):6.0f} ms  "
        f"max {max(values):6.0f} ms"
    )


def med(values: list[float]) -> float:
    return statistics.median(values)


# -- 3. the live log view -------------------------------------------------------------------

# The service: answers /healthz; GET /burst?lines=N&rate=R starts printing `line 000001 …`
# to stdout at R lines/s (once); GET /status says how many it printed. It prints nothing
# else, so every line of the service after its build is a counted one.
TICKER: Final = textwrap.dedent(
    """
    import json, os, sys, threading, time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlparse

    state = {"printed": 0, "done": False, "started": None, "ended": None}
    lock = threading.Lock()

    def burst(lines, rate):
        out = sys.stdout
        start = time.time()
        state["started"] = start
        i = 0
        while i < lines:  # every millisecond, the lines due by then, flushed at once
            due = min(lines, int((time.time() - start) * rate) + 1)
            while i < due:
                i += 1
                out.write(f"line {i:06d} of {lines:06d} printed {time.time():.6f}\\n")
            out.flush()
            state["printed"] = i
            time.sleep(0.001)
        state["ended"] = time.time()
        state["done"] = True

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            url = urlparse(self.path)
            code = 200
            if url.path == "/burst":
                q = parse_qs(url.query)
                with lock:
                    if state["started"] is None:
                        state["started"] = 0
                        args = (int(q["lines"][0]), float(q["rate"][0]))
                        threading.Thread(target=burst, args=args, daemon=True).start()
                    else:
                        code = 409
            body = json.dumps(state).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
    """
)

TICKER_SPEC: Final = f"""apiVersion: enclii.dev/v1
kind: Service
metadata: {{project: bench, environment: dev, name: {LOG_SERVICE}}}
spec:
  runtime:
    cmd: ["python3", "app.py"]
    ports: [8080]
    replicas: {{min: 1, max: 1}}
  health:
    readiness: {{httpGet: /healthz, periodSeconds: 0.5}}
"""

# Installed before the logs view's scripts: animation-frame gaps, long tasks, the logs
# subscription's messages as they reach the page (the websocket, before the app sees
# them), and the status's "N lines" each frame. Gaps and long tasks count from start().
LOGS_PROBE: Final = r"""
(() => {
  const b = {
    measuring: false, maxGap: 0, slowFrames: 0, frames: 0, longTasks: 0, longTaskMs: 0,
    longestTask: 0, last: null, wsLines: 0, wsMessages: 0, wsLastSeq: 0, wsLastAt: null,
    subscribed: false, shown: null, expect: null, firstAt: null, doneAt: null, baseline: null,
  };
  window.__logs = b;
  b.start = () => {
    Object.assign(b, { measuring: true, maxGap: 0, slowFrames: 0, frames: 0, longTasks: 0,
      longTaskMs: 0, longestTask: 0, last: null, startedAt: performance.now(), stoppedAt: null,
      slow: [], tasks: [] });
    b.baseline = b.shown;
  };
  b.stop = () => { b.measuring = false; b.stoppedAt = performance.now(); };
  const status = () => {
    const el = document.querySelector('[data-testid="log-status"]');
    const m = el && /(\d+) lines/.exec(el.textContent || '');
    return m ? Number(m[1]) : null;
  };
  const frame = (now) => {
    if (b.measuring) {
      if (b.last !== null) {
        const gap = now - b.last;
        b.frames++;
        if (gap > b.maxGap) b.maxGap = gap;
        if (gap > __SLOW__) { b.slowFrames++; b.slow.push([now - gap, gap]); }
      }
      b.last = now;
    }
    const n = status();
    if (n !== null) {
      if (b.baseline !== null && n > b.baseline && b.firstAt === null) b.firstAt = Date.now();
      if (b.expect !== null && n >= b.expect && b.doneAt === null) b.doneAt = Date.now();
      b.shown = n;
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  new PerformanceObserver((list) => {
    if (!b.measuring) return;
    for (const e of list.getEntries()) {
      b.longTasks++;
      b.longTaskMs += e.duration;
      if (e.duration > b.longestTask) b.longestTask = e.duration;
      b.tasks.push([e.startTime, e.duration]);
    }
  }).observe({ type: 'longtask', buffered: false });
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        // One line per message (logs) or a batch of them (logBatches).
        if (typeof e.data !== 'string') return;
        if (e.data.indexOf('"logs":{') < 0 && e.data.indexOf('"logBatches":{') < 0) return;
        b.wsMessages++;
        b.wsLastAt = Date.now();
        for (const m of e.data.matchAll(/"sequence":(\d+)/g)) {
          b.wsLines++;
          if (Number(m[1]) > b.wsLastSeq) b.wsLastSeq = Number(m[1]);
        }
      });
    }
    send(data) {
      if (typeof data === 'string' && data.includes('"subscribe"') && data.includes('LogsLive'))
        b.subscribed = true;
      return super.send(data);
    }
  };
})();
""".replace("__SLOW__", f"{SLOW_FRAME_MS:g}")

LAST_ROW: Final = """
() => {
  const rows = [...document.querySelectorAll('.log-line')];
  if (!rows.length) return null;
  const last = rows.reduce((a, r) => (Number(r.dataset.seq) > Number(a.dataset.seq) ? r : a));
  return { seq: Number(last.dataset.seq), message: last.querySelector('.msg').textContent,
           rows: rows.length };
}
"""

LOG_PAGE: Final = (
    "query($s: ID!, $after: Int, $grep: String, $limit: Int!) { logs(serviceId: $s, "
    "limit: $limit, after: $after, grep: $grep) { lines { sequence message } hasMore cursor } }"
)
LINE: Final = re.compile(r"^line (\d{6}) of (\d{6}) printed (\d+\.\d+)$")


@dataclass
class Stored:
    total: int  # every line of the service (build lines too)
    counted: int  # lines matching grep "line "
    unique: int  # distinct counters among them
    complete: bool  # counters 1..printed, each once
    last_seq: int


async def stored(api: httpx.AsyncClient, service: str, printed: int) -> Stored:
    """The service's lines as the API has them, paged from the first."""

    async def pages(grep: str | None) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        after = 0
        while True:
            page = (await gql(api, LOG_PAGE, s=service, after=after, grep=grep, limit=1000))["logs"]
            lines += page["lines"]
            if not page["hasMore"]:
                return lines
            after = page["cursor"]

    everything = await pages(None)
    counted = await pages("line ")
    counters = [int(m.group(1)) for x in counted if (m := LINE.match(x["message"]))]
    last_seq = int(everything[-1]["sequence"]) if everything else 0
    return Stored(
        total=len(everything),
        counted=len(counted),
        unique=len(set(counters)),
        complete=sorted(counters) == list(range(1, printed + 1)),
        last_seq=last_seq,
    )


async def deploy_ticker(api: httpx.AsyncClient, source: Path) -> str:
    (source / "app.py").write_text(TICKER)
    applied = await gql(
        api,
        "mutation($y: String!) { applyService(input: {specYaml: $y}) "
        "{ ... on ApplyServiceSuccess { service { id } } ... on Error { message } } }",
        y=TICKER_SPEC,
    )
    service: str = success(applied["applyService"], "service")["id"]
    made = await gql(api, CREATE_RELEASE, input={"serviceId": service, "sourcePath": str(source)})
    release: str = success(made["createRelease"], "release")["id"]
    await until_healthy(api, release, await deploy(api, service, release))
    return service


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def cpu_by_role(srv: Server) -> dict[str, float]:
    """CPU seconds used so far: by enclii serve, by its router and replicas, by the
    page's renderer, by the rest of Chromium, by this benchmark (with Playwright's driver),
    and by the whole machine."""
    serve = psutil.Process(srv.process.pid)
    me = psutil.Process()
    roles = {"serve": _cpu(serve), "data plane": 0.0, "renderer": 0.0, "browser": 0.0}
    roles["bench"] = _cpu(me)
    plane = {p.pid for p in serve.children(recursive=True)}
    for child in serve.children(recursive=True):
        roles["data plane"] += _cpu(child)
    for child in me.children(recursive=True):
        if child.pid == serve.pid or child.pid in plane:
            continue
        try:
            line = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "chrom" in line:
            roles["renderer" if "--type=renderer" in line else "browser"] += _cpu(child)
        else:
            roles["bench"] += _cpu(child)
    machine_times = psutil.cpu_times()
    roles["machine"] = float(sum(machine_times) - machine_times.idle - machine_times.iowait)
    return roles


BUSY: Final = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")


async def busy(cdp: CDPSession) -> dict[str, float]:
    """Seconds the page's main thread has spent so far: in all, in scripts, layout, style."""
    metrics = (await cdp.send("Performance.getMetrics"))["metrics"]
    return {m["name"]: float(m["value"]) for m in metrics if m["name"] in BUSY}


@dataclass
class LiveLogs:
    rate: float
    seconds: float
    printed: int
    print_s: float  # the app's own first-to-last line
    stored: Stored
    baseline: int  # lines the page showed before the burst (the build's)
    shown: int
    ws_lines: int  # log lines that reached the page over the websocket, in all
    ws_messages: int  # the websocket messages that carried them
    ws_last_seq: int
    ws_done_s: float  # burst end -> the last logs message reached the page's websocket
    page_first_s: float  # burst start -> first burst line on the page
    page_done_s: float | None  # burst end -> the page shows every line (None: never)
    delivered_rate: float  # burst lines / (first on the page -> last on the page)
    last_row: dict[str, Any] | None
    max_gap_ms: float
    slow_frames: int
    frames: int
    measured_s: float  # the window of the frame and long-task figures
    idle_fps: float  # frames/s of the same page before the burst
    slow: list[tuple[float, float]]  # (s after the burst began, ms) of each gap > 100 ms
    tasks: list[tuple[float, float]]  # (s after the burst began, ms) of each long task
    busy: dict[str, float]  # the page's main thread in the window: s in tasks, scripts, ...
    cpu: dict[str, float]  # CPU seconds in the window, by role (see cpu_by_role)
    long_tasks: int
    long_task_ms: float
    longest_task_ms: float


async def live_logs(
    browser: Browser, srv: Server, token: str, rate: float, seconds: float, catch_up_s: float
) -> LiveLogs:
    lines = round(rate * seconds)
    headers = {"authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=srv.url, headers=headers, timeout=60) as api,
        httpx.AsyncClient(
            base_url=srv.router_url, headers={"host": host_of(LOG_SERVICE)}, timeout=10
        ) as app,
    ):
        with tempfile.TemporaryDirectory(prefix="enclii-bench-ui-") as tmp:
            service = await deploy_ticker(api, Path(tmp))
        context = await browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
        try:
            await context.add_init_script(LOGS_PROBE)
            page = await context.new_page()
            page.set_default_timeout(PAGE_DEADLINE_MS)
            cdp = await context.new_cdp_session(page)
            await cdp.send("Performance.enable")
            await page.goto(f"{srv.url}/projects/bench/dev/{LOG_SERVICE}/logs#token={token}")
            await page.wait_for_function(
                "() => window.__logs.subscribed && window.__logs.shown !== null",
                timeout=PAGE_DEADLINE_MS,
            )
            await page.wait_for_selector('[data-testid="log-status"]:has-text("live")')
            await asyncio.sleep(1.0)  # the subscription's first read is done by then
            # One idle second first, for the frame rate of this browser with nothing to do.
            await page.evaluate("window.__logs.start()")
            await asyncio.sleep(1.0)
            idle = await page.evaluate(
                "(() => { const b = window.__logs; "
                "return b.frames / ((performance.now() - b.startedAt) / 1000); })()"
            )
            await page.evaluate("window.__logs.start(); window.__logs.burstAt = performance.now()")
            busy_before = await busy(cdp)
            cpu_before = cpu_by_role(srv)
            baseline = int(await page.evaluate("window.__logs.baseline"))
            await page.evaluate(f"window.__logs.expect = {baseline + lines}")

            answer = await app.get("/burst", params={"lines": lines, "rate": rate})
            if answer.status_code != 200:
                raise RuntimeError(f"the burst did not start: {answer.status_code} {answer.text}")
            async with asyncio.timeout(seconds + DEADLINE_S):
                while True:
                    status = (await app.get("/status")).json()
                    if status["done"]:
                        break
                    await asyncio.sleep(0.5)
            ended = time.time()
            printed = int(status["printed"])
            started_at, ended_at = float(status["started"]), float(status["ended"])

            # The server: every printed line stored (or the deadline says how many were).
            async with asyncio.timeout(DEADLINE_S):
                while True:
                    tail = (await gql(api, LOG_PAGE, s=service, after=None, grep="line ", limit=1))[
                        "logs"
                    ]
                    last = tail["lines"][-1]["message"] if tail["lines"] else ""
                    if LINE.match(last) and int(last.split()[1]) >= printed:
                        break
                    if time.time() - ended > catch_up_s * 3:
                        break
                    await asyncio.sleep(0.1)

            # The page: every line shown within the catch-up deadline.
            remaining_ms = max(0.0, (ended + catch_up_s - time.time()) * 1000)
            # Past the deadline, the figures below say how far it got.
            with contextlib.suppress(PlaywrightTimeoutError):
                await page.wait_for_function(
                    "() => window.__logs.doneAt !== null", timeout=max(remaining_ms, 1), polling=100
                )
            await page.evaluate("window.__logs.stop()")
            busy_after = await busy(cdp)
            cpu_after = cpu_by_role(srv)
            probe: dict[str, Any] = await page.evaluate(
                "(() => { const b = window.__logs; return {...b, start: null, stop: null}; })()"
            )
            last_row = await page.evaluate(LAST_ROW)
            server_side = await stored(api, service, printed)
        finally:
            await context.close()
    first_at = (probe["firstAt"] or 0) / 1000
    done_at = probe["doneAt"] / 1000 if probe["doneAt"] is not None else None
    burst_lines = int(probe["shown"] or 0) - baseline
    window = (done_at or time.time()) - first_at if first_at else float("nan")
    return LiveLogs(
        rate=rate,
        seconds=seconds,
        printed=printed,
        print_s=ended_at - started_at,
        stored=server_side,
        baseline=baseline,
        shown=int(probe["shown"] or 0),
        ws_lines=int(probe["wsLines"]),
        ws_messages=int(probe["wsMessages"]),
        ws_last_seq=int(probe["wsLastSeq"]),
        ws_done_s=probe["wsLastAt"] / 1000 - ended_at if probe["wsLastAt"] else float("nan"),
        page_first_s=first_at - started_at if first_at else float("nan"),
        page_done_s=done_at - ended_at if done_at is not None else None,
        delivered_rate=burst_lines / window if window and window > 0 else float("nan"),
        last_row=last_row,
        max_gap_ms=float(probe["maxGap"]),
        slow_frames=int(probe["slowFrames"]),
        frames=int(probe["frames"]),
        measured_s=(probe["stoppedAt"] - probe["startedAt"]) / 1000,
        idle_fps=float(idle),
        slow=[((t - probe["burstAt"]) / 1000, g) for t, g in probe["slow"]],
        tasks=[((t - probe["burstAt"]) / 1000, d) for t, d in probe["tasks"]],
        busy={k: busy_after[k] - busy_before[k] for k in busy_after},
        cpu={k: cpu_after[k] - cpu_before[k] for k in cpu_after},
        long_tasks=int(probe["longTasks"]),
        long_task_ms=float(probe["longTaskMs"]),
        longest_task_ms=float(probe["longestTask"]),
    )


# -- running ------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


RUNTIMES: Final = (
    "{ projects(first: 10) { nodes { environments(first: 10) { nodes { services(first: 100) "
    "{ nodes { runtime { status replicasReady } } } } } } } }"
)


async def settled(srv: Server, token: str, quiet_s: float = 3.0) -> tuple[float, int]:
    """Wait until the seeded runtimes stop changing: the local data plane retires those no
    process backs, a few seconds of CPU right after start that must not be measured.
    (Seconds it took, services still with a runtime.)"""
    began = time.monotonic()
    headers = {"authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=srv.url, headers=headers, timeout=30) as api,
        asyncio.timeout(DEADLINE_S),
    ):
        last, since = None, time.monotonic()
        while True:
            data = await gql(api, RUNTIMES)
            runtimes = [
                s["runtime"]
                for p in data["projects"]["nodes"]
                for e in p["environments"]["nodes"]
                for s in e["services"]["nodes"]
            ]
            if runtimes != last:
                last, since = runtimes, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return since - began, sum(r is not None for r in runtimes)
            await asyncio.sleep(0.5)


async def served(srv: Server, names: list[str]) -> list[tuple[str, str, int]]:
    """What `enclii serve` sends for each asset to a browser that accepts gzip and brotli:
    (name, content-encoding, bytes on the wire)."""
    found = []
    async with httpx.AsyncClient(base_url=srv.url, timeout=30) as http:
        for name in names:
            response = await http.get(
                f"/assets/{name}", headers={"accept-encoding": "gzip, deflate, br"}
            )
            response.raise_for_status()
            encoding = response.headers.get("content-encoding", "none")
            found.append((name, encoding, response.num_bytes_downloaded))
    return found


@dataclass
class Run:
    served: list[tuple[str, str, int]]
    settled_s: float
    runtimes_left: int
    warm: Loads
    cold: Loads | None
    logs: LiveLogs


async def browse(srv: Server, token: str, b: Bundle, args: argparse.Namespace) -> Run:
    wire = await served(srv, [name for name, _, _ in b.scripts])
    settle = await settled(srv, token)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            warm = await dashboard_loads(browser, srv, token, args.runs, cold=False)
            cold = (
                await dashboard_loads(browser, srv, token, args.runs, cold=True)
                if args.cold
                else None
            )
            logs = await live_logs(browser, srv, token, args.rate, args.seconds, args.catch_up)
        finally:
            await browser.close()
    return Run(wire, *settle, warm, cold, logs)


def report_bundle(b: Bundle, wire: list[tuple[str, str, int]]) -> bool:
    ok = b.js_gzip <= BUDGET_GZIP_BYTES
    print(
        f"1. initial JavaScript: {kb(b.js_gzip)} gzipped ({kb(b.js_raw)} raw) in "
        f"{len(b.scripts)} file(s); target <= {kb(BUDGET_GZIP_BYTES)} gzipped: {verdict(ok)}"
    )
    for name, raw, gz in b.scripts:
        print(f"   {name}: {kb(raw)} raw, {kb(gz)} gzip -9")
    for name, encoding, size in wire:
        print(
            f"   as `enclii serve` sends it (accept-encoding: gzip, deflate, br): {name} "
            f"{kb(size)}, content-encoding: {encoding}"
        )
    for name, raw, gz in b.styles:
        print(f"   (not counted) stylesheet {name}: {kb(raw)} raw, {kb(gz)} gzip -9")
    for name, raw, gz in b.lazy:
        print(f"   (not counted) lazy chunk {name}: {kb(raw)} raw, {kb(gz)} gzip -9")
    return ok


def report_dashboard(label: str, loads: Loads, runs: int) -> bool:
    p95 = percentile(loads.rows, 95)
    ok = p95 <= TARGET_RENDER_MS
    viewer_ms = [end - start for start, end in loads.viewer]
    dash_ms = [end - start for start, end in loads.dashboard]
    after_query = [r - end for r, (_, end) in zip(loads.rows, loads.dashboard, strict=True)]
    print(
        f"   {label} ({runs} loads after {WARMUPS} warm-ups): 200 rows in the DOM "
        f"{spread(loads.rows)}; target P95 <= {TARGET_RENDER_MS:.0f} ms: {verdict(ok)}"
    )
    print(f"   {'':{len(label)}}  next frame done   {spread(loads.painted)}")
    print(
        f"   {'':{len(label)}}  medians: HTML {med(loads.html):.0f} ms, script loaded "
        f"{med(loads.script):.0f} ms, Viewer query {med([s for s, _ in loads.viewer]):.0f}→"
        f"{med([e for _, e in loads.viewer]):.0f} ms ({med(viewer_ms):.0f} ms), Dashboard "
        f"query {med([s for s, _ in loads.dashboard]):.0f}→"
        f"{med([e for _, e in loads.dashboard]):.0f} ms ({med(dash_ms):.0f} ms, "
        f"{loads.dashboard_bytes / 1024:.0f} KiB), its response → rows "
        f"{med(after_query):.0f} ms"
    )
    return ok


def report_logs(r: LiveLogs, catch_up_s: float) -> bool:
    burst_shown = r.shown - r.baseline
    last_ok = bool(
        r.last_row
        and r.last_row["seq"] == r.stored.last_seq
        and LINE.match(r.last_row["message"])
        and int(r.last_row["message"].split()[1]) == r.printed
    )
    none_dropped = (
        r.stored.complete and r.shown == r.stored.total and burst_shown == r.printed and last_ok
    )
    in_time = r.page_done_s is not None and r.page_done_s <= catch_up_s
    smooth = r.max_gap_ms < MAX_FRAME_GAP_MS
    ok = none_dropped and in_time and smooth
    print(
        f"3. live logs at {r.rate:,.0f} lines/s for {r.seconds:g} s: target every line shown "
        f"within {catch_up_s:g} s of the burst's end, longest frame gap < "
        f"{MAX_FRAME_GAP_MS:.0f} ms: {verdict(ok)}"
    )
    print(
        f"   printed {r.printed:,} (in {r.print_s:.2f} s, {r.printed / r.print_s:,.0f} lines/s); "
        f"stored by the server {r.stored.counted:,} ({r.stored.unique:,} distinct, "
        f"{'complete' if r.stored.complete else 'INCOMPLETE'})"
    )
    done = f"{r.page_done_s:.2f} s" if r.page_done_s is not None else "never (deadline)"
    print(
        f"   page: shows {burst_shown:,} burst lines (+{r.baseline} before it; server has "
        f"{r.stored.total:,} in all, page {r.shown:,}): "
        f"{'none dropped' if none_dropped else 'LINES MISSING OR LAST ROW WRONG'}; "
        f"over the websocket {r.ws_lines:,} lines in {r.ws_messages:,} messages (last sequence "
        f"{r.ws_last_seq:,}, {r.ws_done_s:.2f} s after the last line was printed; server's "
        f"last {r.stored.last_seq:,})"
    )
    print(
        f"   delivered to the page {r.delivered_rate:,.0f} lines/s; first burst line on the "
        f"page {r.page_first_s:.2f} s after the burst began; all shown {done} after the last was "
        f"printed"
    )
    row = r.last_row or {}
    print(
        f"   last row in view: seq {row.get('seq')} {row.get('message')!r} "
        f"({row.get('rows')} rows in the DOM): {'the last line printed' if last_ok else 'WRONG'}"
    )
    print(
        f"   frames: longest gap {r.max_gap_ms:.0f} ms (< {MAX_FRAME_GAP_MS:.0f} ms: "
        f"{verdict(smooth)}), {r.slow_frames} of {r.frames} frames > {SLOW_FRAME_MS:.0f} ms "
        f"({r.frames / r.measured_s:.0f} frames/s over {r.measured_s:.1f} s; idle "
        f"{r.idle_fps:.0f} frames/s); "
        f"long tasks {r.long_tasks}, {r.long_task_ms:.0f} ms in all (longest "
        f"{r.longest_task_ms:.0f} ms)"
    )
    b, w = r.busy, r.measured_s
    print(
        f"   page main thread busy {b['TaskDuration'] / w:.0%} of the window: scripts "
        f"{b['ScriptDuration'] / w:.0%}, layout {b['LayoutDuration'] / w:.0%}, style "
        f"{b['RecalcStyleDuration'] / w:.0%}"
    )
    c = r.cpu
    # Clamped: the machine's and the processes' counters tick apart.
    others = max(0.0, c["machine"] - sum(v for k, v in c.items() if k != "machine"))
    print(
        f"   CPU in the window, in cores of {os.cpu_count()}: enclii serve {c['serve'] / w:.2f}, "
        f"router + replica {c['data plane'] / w:.2f}, the page's renderer "
        f"{c['renderer'] / w:.2f}, the rest of Chromium {c['browser'] / w:.2f}, this "
        f"benchmark {c['bench'] / w:.2f}, everything else on the machine {others / w:.2f}"
    )
    if r.slow or r.tasks:
        print(
            "   when (s after the burst began): "
            + ", ".join(f"gap {g:.0f} ms at {t:+.2f}" for t, g in r.slow[:10])
            + ("; " if r.slow and r.tasks else "")
            + ", ".join(f"task {d:.0f} ms at {t:+.2f}" for t, d in r.tasks[:10])
        )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    default_dist = os.environ.get(DIST_ENV) or str(REPO / "web" / "dist")
    parser.add_argument(
        "--dist", default=default_dist, help="the UI's build (default: %(default)s)"
    )
    parser.add_argument("--runs", type=int, default=10, help="measured dashboard loads")
    parser.add_argument(
        "--no-cold", dest="cold", action="store_false", help="skip loads with the cache disabled"
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="log lines/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="of the log burst")
    parser.add_argument(
        "--catch-up", type=float, default=5.0, help="s after the burst for the page to show all"
    )
    args = parser.parse_args()
    dist = Path(args.dist).resolve()
    if not (dist / "index.html").is_file():
        print(
            f"no UI build at {dist} (no index.html): build it first with "
            f"`npm --prefix web ci && npm --prefix web run build` (or pass --dist)",
            file=sys.stderr,
        )
        return 2
    print(f"machine: {machine()}")
    print(f"build: {dist}", flush=True)
    with tempfile.TemporaryDirectory(prefix="enclii-bench-ui-dist-") as tmp:
        # A copy: the server serves the very build measured, even if web/dist is rebuilt
        # meanwhile (Vite empties it first).
        snapshot = Path(tmp) / "dist"
        shutil.copytree(dist, snapshot)
        os.environ[DIST_ENV] = str(snapshot)
        b = bundle(snapshot)
        with database("sqlite") as url:
            seeded = asyncio.run(seed(url, SERVICES))
            with server(url) as srv:
                run = asyncio.run(browse(srv, seeded.token, b, args))
    ok = report_bundle(b, run.served)
    print(
        f"2. dashboard, 1 project x 3 environments x {SERVICES} services, navigation start → "
        f"rows (the first load of all, caches cold: {run.warm.cold_first:.0f} ms); measured "
        f"once the platform settled, {run.settled_s:.1f} s after start, with "
        f"{run.runtimes_left} of {SERVICES} seeded runtimes left (it retires those no process "
        f"backs)"
    )
    ok &= report_dashboard("warm cache", run.warm, args.runs)
    if run.cold is not None:
        report_dashboard("cache off ", run.cold, args.runs)
    ok &= report_logs(run.logs, args.catch_up)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
