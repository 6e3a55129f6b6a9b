"""The plugin host: the hook contract (:mod:`.hookspecs`) and the plugin manager (:mod:`.manager`).

Owns finding, loading and calling plugins. May import :mod:`attrib.errors` and
:mod:`attrib.extractors.contract`; nothing else of attrib.
"""

from .hookspecs import hookimpl, hookspec

__all__ = ["hookimpl", "hookspec"]
