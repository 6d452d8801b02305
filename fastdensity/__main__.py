"""``python -m fastdensity``: the command line (see ``fastdensity.cli``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
