"""What the Enclii router costs: requests/s and added latency, against the replica itself and
against nginx proxying the same replica, in one run.

Three targets, all on this machine:
  - direct: the replica itself;
  - enclii: the Enclii router (started by RouterProcess as the control plane starts it, with
    its metrics flushed to a SQLite store every 5 s, as in production), routing one host to
    the replica;
  - nginx:  Debian's nginx as a reverse proxy to the same replica (HTTP/1.1 keep-alive pool
    to the upstream, proxy_buffering off since the Enclii router streams too).
The replica is a second nginx answering a fixed 13-byte body: the cheapest HTTP server at
hand, so that what is measured is the proxies' cost and not the replica's. Both proxies run
one process (nginx: one worker), like for like.

The load generator is wrk. Throughput is measured with --concurrency connections (default 32)
and latency, separately, with one connection issuing requests back to back, so latency is
the proxy's own and not queueing; "added" latency is the target's P50/P95 minus the
replica's. Targets are measured in turn for --rounds rounds (medians are reported), so noise
on a shared machine falls on all three.

Needs wrk and nginx. When either is missing the bench installs it with apt-get (Debian
packages `wrk` and `nginx`; as root, or through passwordless `sudo -n`). Installing Debian's
nginx may start its default site on port 80 where an init system runs; this bench does not
use that one, it runs nginx from a temporary prefix of its own.

    python bench/router.py [--seconds 4] [--concurrency 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import database, free_port, machine, seed
from reconcile.local.router_process import RouterProcess
from reconcile.local.routing import Backend, RouteEntry, RoutingTable, write_table
from store.db import Store
from store.models import Service

HOST = "bench.dev.bench.localhost"
BODY = "Hello, world\n"
TOOLS = {"wrk": "wrk", "nginx": "nginx"}  # executable → Debian package
SBIN = "/usr/local/sbin:/usr/sbin:/sbin"

# Prints wrk's figures as one JSON line (microseconds), after wrk's own report.
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "errors": %d, "non_2xx": %d, '
    .. '"p50_us": %d, "p95_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""

REPLICA_CONF = """
worker_processes 1;
{user}
pid {prefix}/replica.pid;
error_log {prefix}/replica-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  {temp_paths}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    keepalive_requests 1000000;
    location / {{ default_type text/plain; return 200 "{body}"; }}
  }}
}}
"""

PROXY_CONF = """
worker_processes 1;
{user}
pid {prefix}/proxy.pid;
error_log {prefix}/proxy-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  {temp_paths}
  upstream replica {{
    server 127.0.0.1:{upstream};
    keepalive 128;
    keepalive_requests 1000000;
  }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    keepalive_requests 1000000;
    location / {{
      proxy_pass http://replica;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_buffering off;
    }}
  }}
}}
"""


def _which(name: str) -> str | None:
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:{SBIN}")


def ensure_tools() -> dict[str, str]:
    """Paths of wrk and nginx, installing the Debian packages that are missing."""
    missing = [package for exe, package in TOOLS.items() if _which(exe) is None]
    if missing:
        if os.geteuid() == 0:
            prefix: list[str] = []
        elif subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
            prefix = ["sudo", "-n"]
        else:
            raise SystemExit(
                f"bench/router.py needs {', '.join(missing)}: install the Debian package(s) "
                "with apt-get (this needs root or passwordless sudo)"
            )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        print(f"installing {', '.join(missing)} with apt-get", file=sys.stderr)
        subprocess.run([*prefix, "apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            [*prefix, "apt-get", "install", "-y", "-qq", *missing],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    paths = {exe: _which(exe) for exe in TOOLS}
    found = {exe: path for exe, path in paths.items() if path is not None}
    if len(found) != len(TOOLS):
        raise SystemExit(f"still missing after apt-get: {sorted(set(TOOLS) - set(found))}")
    return found


def _wait_answering(url: str, host: str, deadline_s: float = 15.0) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            if httpx.get(url, headers={"Host": host}, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {deadline_s:g} s")
        time.sleep(0.05)


@contextmanager
def nginx(binary: str, prefix: Path, name: str, template: str, **values: object) -> Iterator[int]:
    """An nginx of our own (its own prefix, config and pid file) on a free port."""
    port = free_port()
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    temp_paths = " ".join(
        f"{sub}_temp_path {prefix / sub};" for sub in ("proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = prefix / f"{name}.conf"
    conf.write_text(
        template.format(
            prefix=prefix,
            port=port,
            # As root, nginx's workers would drop to a user that cannot read our prefix.
            user="user root;" if os.geteuid() == 0 else "",
            temp_paths=f"client_body_temp_path {prefix / 'body'}; {temp_paths}",
            body=BODY.replace("\n", "\\n"),
            **values,
        )
    )
    process = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_answering(f"http://127.0.0.1:{port}/", HOST)
        yield port
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _service_id(url: str) -> str:
    store = Store(url)
    try:
        async with store.read() as session:
            return (await session.scalars(select(Service.id).limit(1))).one()
    finally:
        await store.close()


@contextmanager
def enclii_router(data_dir: Path, database_url: str, upstream: int) -> Iterator[int]:
    asyncio.run(seed(database_url, services=1))
    service_id = asyncio.run(_service_id(database_url))
    port = free_port()
    process = RouterProcess(data_dir, port, database_url=database_url)
    route = RouteEntry(
        host=HOST,
        path="/",
        service_id=service_id,
        service="svc-000.dev.bench",
        backends=(Backend("rel_bench", 100, (f"127.0.0.1:{upstream}",)),),
    )
    write_table(process.home, RoutingTable(1, (route,)))
    asyncio.run(process.ensure())
    try:
        _wait_answering(f"{process.url}/", HOST)
        yield port
    finally:
        asyncio.run(process.stop())


@dataclass(frozen=True)
class Run:
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


def wrk(binary: str, script: Path, port: int, connections: int, seconds: float) -> Run:
    command = [
        binary,
        "-t1",  # one thread: the load generator takes as little CPU as it can
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-H",
        f"Host: {HOST}",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}/",
    ]
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    if figures["errors"] or figures["non_2xx"]:
        raise RuntimeError(f"wrk saw failures on port {port}: {figures}")
    return Run(
        figures["requests"] / (figures["duration_us"] / 1e6),
        figures["p50_us"] / 1000,
        figures["p95_us"] / 1000,
        figures["p99_us"] / 1000,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tools = ensure_tools()
    version = subprocess.run([tools["nginx"], "-v"], capture_output=True, text=True).stderr
    print(f"machine: {machine()}")
    print(f"tools: {version.strip()}, wrk; connections {args.concurrency}; {args.rounds} rounds")

    targets = ("direct", "enclii", "nginx")
    throughput: dict[str, list[float]] = {t: [] for t in targets}
    latency: dict[str, list[Run]] = {t: [] for t in targets}
    with (
        tempfile.TemporaryDirectory(prefix="enclii-bench-router-") as tmp,
        database("sqlite") as url,
    ):
        root = Path(tmp)
        script = root / "report.lua"
        script.write_text(WRK_SCRIPT)
        with (
            nginx(tools["nginx"], root / "replica", "replica", REPLICA_CONF) as replica,
            nginx(tools["nginx"], root / "proxy", "proxy", PROXY_CONF, upstream=replica) as proxy,
            enclii_router(root / "data", url, replica) as router,
        ):
            ports = {"direct": replica, "enclii": router, "nginx": proxy}
            for port in ports.values():  # warm pools and caches
                wrk(tools["wrk"], script, port, args.concurrency, 1)
            for _ in range(args.rounds):
                for target, port in ports.items():
                    loaded = wrk(tools["wrk"], script, port, args.concurrency, args.seconds)
                    throughput[target].append(loaded.requests_per_s)
                    latency[target].append(wrk(tools["wrk"], script, port, 1, args.seconds))
    report(throughput, latency)
    return 0


def report(throughput: dict[str, list[float]], latency: dict[str, list[Run]]) -> None:
    rps = {t: statistics.median(v) for t, v in throughput.items()}
    p50 = {t: statistics.median(r.p50_ms for r in v) for t, v in latency.items()}
    p95 = {t: statistics.median(r.p95_ms for r in v) for t, v in latency.items()}
    print(f"{'target':8} {'req/s':>9} {'P50 ms':>8} {'P95 ms':>8} {'+P50 ms':>8} {'+P95 ms':>8}")
    for target in rps:
        print(
            f"{target:8} {rps[target]:9.0f} {p50[target]:8.3f} {p95[target]:8.3f} "
            f"{p50[target] - p50['direct']:8.3f} {p95[target] - p95['direct']:8.3f}"
            f"   (req/s rounds {[round(r) for r in throughput[target]]})"
        )
    print(
        f"ratios: enclii/direct req/s {rps['enclii'] / rps['direct']:.3f}; "
        f"nginx/direct {rps['nginx'] / rps['direct']:.3f}; "
        f"enclii/nginx {rps['enclii'] / rps['nginx']:.3f}; "
        f"added P50 enclii/nginx "
        f"{_ratio(p50['enclii'] - p50['direct'], p50['nginx'] - p50['direct'])}, "
        f"added P95 enclii/nginx "
        f"{_ratio(p95['enclii'] - p95['direct'], p95['nginx'] - p95['direct'])}"
    )


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0 else "n/a (nginx added nothing measurable)"


if __name__ == "__main__":
    raise SystemExit(main())
