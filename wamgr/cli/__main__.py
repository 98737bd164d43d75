"""``python -m wamgr.cli``: the ``wamgr`` command without its console script."""

import sys

from wamgr.cli.main import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(prog_name="wamgr"))
