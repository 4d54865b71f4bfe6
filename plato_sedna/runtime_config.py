"""Read access to the running Plato config, including the ``[sedna]`` table.

Plato components built by the plugin read their settings here, once, with the
default written next to each key, instead of probing ``Config()`` deep in logic.
"""

from __future__ import annotations

from typing import Any


def _section(name: str) -> Any:
    from plato.config import Config

    config = Config()
    if name in ("clients", "server", "data", "trainer", "algorithm"):
        return getattr(Config, name)
    return getattr(config.config, name, None)


def setting(section: str, key: str, default: Any = None) -> Any:
    """Return ``section.key`` of the running Plato config, or ``default``."""
    node = _section(section)
    if node is None:
        return default
    value = getattr(node, key, None)
    return default if value is None else value


def table(section: str, key: str) -> dict[str, Any] | None:
    """Return the nested table ``section.key`` as a plain dict, or None when absent."""
    node = setting(section, key)
    if node is None:
        return None
    return dict(node._asdict()) if hasattr(node, "_asdict") else dict(node)


def sedna(key: str, default: Any = None) -> Any:
    """Return a key of the ``[sedna]`` table written by ``config.resolve_config``."""
    return setting("sedna", key, default)



def plato_path(name: str) -> str:
    """One of the folders Plato derives from its base path, e.g. ``checkpoint_path``."""
    from plato.config import Config

    return Config().params[name]
