"""``python -m plato_sedna``: the ``plato`` launcher."""

import importlib.util
import sys

from plato_sedna.cli import plato_main

if __name__ == "__main__":
    # Plato starts simulated clients with multiprocessing's spawn, which re-imports the
    # main module in each child but skips a package's __main__: the children would miss
    # the plugin's registrations. Naming the launcher module makes them import it.
    sys.modules["__main__"].__spec__ = importlib.util.find_spec("plato_sedna.cli")
    sys.exit(plato_main())
