"""A background worker: takes (pretend) jobs from a queue and logs each as a JSON line.

It serves no traffic; Enclii keeps it running, restarts it if it dies and stops it with
SIGTERM, which it honours by finishing the job in hand."""

import json
import os
import signal
import sys
import time

stopping = False


def log(level: str, message: str, **fields: object) -> None:
    print(json.dumps({"level": level, "message": message, **fields}), flush=True)


def stop(signum: int, _frame: object) -> None:
    global stopping
    stopping = True
    log("info", "SIGTERM: finishing the current job, then exiting")


def main() -> int:
    signal.signal(signal.SIGTERM, stop)
    interval = float(os.environ.get("JOB_INTERVAL_SECONDS", "1"))
    replica = os.environ.get("ENCLII_REPLICA", "0")
    log("info", "worker started", replica=replica, release=os.environ.get("ENCLII_RELEASE_ID"))
    done = 0
    while not stopping:
        started = time.monotonic()
        time.sleep(interval)  # the job
        done += 1
        log("info", "job done", job=done, ms=round((time.monotonic() - started) * 1000, 1))
    log("info", "worker stopped", jobs=done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
