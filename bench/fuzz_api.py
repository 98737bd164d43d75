"""A long fuzzing run of the HTTP API: the suite's fuzz test with many more examples.

    .venv/bin/python bench/fuzz_api.py [--examples 200] [--database-url URL]

``tests/api/test_fuzz.py`` fuzzes every operation of the API from its OpenAPI document
(schemathesis), against a real manager on the simulator: valid and invalid requests, on a
connected tenant and without the key, checking that no response is a 5xx and that every one
is as the document says. In the suite it sends a few hundred requests, derandomized; this runs
it with ``--examples`` per operation and run, with fresh randomness each time, and prints
the responses by run and status. The exit status is pytest's (0: nothing found).

With ``--database-url`` the test databases are made on that server (the role needs
CREATEDB) instead of the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/api/test_fuzz.py"


def main() -> int:
    """Run the fuzz test with the asked budget; return its exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--examples", type=int, default=200, help="examples per operation and run (200)"
    )
    parser.add_argument("--database-url", help="a PostgreSQL server to make test databases on")
    args = parser.parse_args()
    if args.examples < 1:
        parser.error("--examples must be at least 1")
    env = dict(os.environ, WAMGR_FUZZ_EXAMPLES=str(args.examples))
    if args.database_url:
        env["WAMGR_TEST_DATABASE_URL"] = args.database_url
    # No per-test timeout: a long run is the point.
    argv = [sys.executable, "-m", "pytest", TEST, "-s", "-q", "-p", "no:cacheprovider"]
    return subprocess.call([*argv, "-o", "timeout=0"], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
