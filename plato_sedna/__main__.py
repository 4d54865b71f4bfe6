"""``python -m plato_sedna``: the ``plato`` launcher."""

import sys

from plato_sedna.cli import plato_main

if __name__ == "__main__":
    sys.exit(plato_main())
