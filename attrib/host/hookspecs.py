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


@hookspec
def register_evidence(register: Callable[[Any], None]) -> None:
    """Call ``register(ReaderClass)`` for each provenance evidence reader the plugin provides.

    A reader has a class attribute ``name`` and a method ``read(source)`` that takes an
    :class:`attrib.evidence.EvidenceSource` (the file's bytes, path and lazily opened image) and
    returns a list of :class:`attrib.evidence.Evidence`; an optional class attribute
    ``generator_names`` adds claim-to-generator rules.
    """
