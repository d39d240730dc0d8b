"""Run the ``lsearray`` command line as ``python -m lsearray``."""

import sys

from lsearray._cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
