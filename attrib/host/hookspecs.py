"""The whole plugin contract of attrib.

Plugins implement these hooks with ``@attrib.hookimpl`` and are found through
the ``attrib`` entry-point group. Hooks may gain arguments; none is ever
renamed or removed.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

hookspec = pluggy.HookspecMarker("attrib")
hookimpl = pluggy.HookimplMarker("attrib")


@hookspec
def register_extractors(register: Callable[[Any], None]) -> None:
    """Call ``register(ExtractorClass)`` for each feature extractor the plugin provides."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add click commands or groups to the ``attrib`` CLI group ``cli``."""
