"""`enclii serve` without the data plane, for benchmarks of the API alone.

The same server (graph.server.serve: uvicorn, the app, its GC tuning), minus the
controllers. Benchmarks seed rows that no controller made (runtimes with no processes
behind them); a full server would reconcile them away, several seconds of CPU for 200
services, and then measure a smaller dashboard than the one seeded.

    python -m bench._api_server --data-dir DIR --port N --database-url URL
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graph.server import ServerConfig, serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    config = ServerConfig(
        data_dir=args.data_dir,
        port=args.port,
        database_url=args.database_url,
        log_level="warning",
        # Far above the load: benchmarks measure serving, not refusals.
        rate_per_minute=1e9,
        rate_burst=10**9,
    )
    asyncio.run(serve(config, out=io.StringIO()))


if __name__ == "__main__":
    main()
