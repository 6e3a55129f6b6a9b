"""The plugin host: the hook contract (:mod:`.hookspecs`) and the plugin manager (:mod:`.manager`).

Owns finding, loading and calling plugins.

May import (the layers below it in the import contract, pyproject.toml): :mod:`attrib.names`, :mod:`attrib.errors`,
:mod:`attrib.version`. Never :mod:`attrib.images` (its sibling).
"""

from .hookspecs import hookimpl, hookspec

__all__ = ["hookimpl", "hookspec"]
