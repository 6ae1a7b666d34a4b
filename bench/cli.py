"""The CLI's speed: start-up (`enclii --help`) and `enclii ps --json` against 200 services.

Against a real `enclii serve` seeded with 1 project, dev/stage/prod and 600 services (each
with a release, a runtime and a route), 200 in each environment: `ps --env dev` lists 200
(two pages of the API). Each command is a fresh process, as a user
runs it; the bare interpreter's start-up is measured alongside, so the CLI's own share
shows. Target: start-up ≤ 300 ms.

    python bench/cli.py [--backend sqlite|postgres] [--runs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import REPO, database, machine, seed, server

TARGET_STARTUP_S = 0.3
ENCLII = [sys.executable, "-m", "client.cli.main"]


def timed(args: list[str], env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"{args} failed: {done.stderr}")
    return times


def line(label: str, times: list[float]) -> str:
    return (
        f"{label:<34} median {statistics.median(times) * 1000:6.0f} ms   "
        f"min {min(times) * 1000:6.0f} ms   max {max(times) * 1000:6.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with database(args.backend) as url:
        seeded = asyncio.run(seed(url, services=600))
        with server(url) as srv:
            env = {
                **os.environ,
                "CI": "true",
                "ENCLII_API_URL": f"{srv.url}/graphql",
                "ENCLII_TOKEN": seeded.token,
            }
            bare = timed([sys.executable, "-c", "pass"], env, args.runs)
            startup = timed([*ENCLII, "--help"], env, args.runs)
            ps = timed(
                [*ENCLII, "ps", "--json", "--env", "dev", "--project", "bench"], env, args.runs
            )
            check = subprocess.run(
                [*ENCLII, "ps", "--json", "--env", "dev", "--project", "bench"],
                env=env,
                cwd=REPO,
                capture_output=True,
                text=True,
            )
            listed = len(json.loads(check.stdout)["services"])
    print(line("python -c pass (the floor)", bare))
    print(line("enclii --help", startup))
    print(line(f"enclii ps --json ({listed} services)", ps))
    median = statistics.median(startup)
    verdict = "met" if median <= TARGET_STARTUP_S else "MISSED"
    print(
        f"{args.backend}: start-up median {median * 1000:.0f} ms "
        f"({(median - statistics.median(bare)) * 1000:.0f} ms over the bare interpreter; "
        f"target ≤ {TARGET_STARTUP_S * 1000:.0f} ms: {verdict}); "
        f"ps median {statistics.median(ps) * 1000:.0f} ms"
    )
    if verdict != "met":
        raise SystemExit(1)


if __name__ == "__main__":
    main()
