"""Evaluation: measuring attribution on labelled images.

Owns ``attrib evaluate``'s protocol (:mod:`.protocol`), open-set metrics (:mod:`.metrics`),
the report's plots (:mod:`.report`), the demo on the synthetic generator zoo (:mod:`.demo`) and
``attrib discover --evaluate`` (:mod:`.discovery`);
the zoo and the image conditions (crops, JPEG) are :mod:`attrib.synthetic`'s.

May import (the layers below it in the import contract, pyproject.toml): :mod:`attrib.report`, :mod:`attrib.discovery`,
:mod:`attrib.gallery`, :mod:`attrib.enrollment`, :mod:`attrib.routing`, :mod:`attrib.upkeep`, :mod:`attrib.scoring`,
:mod:`attrib.storage`, :mod:`attrib.index`, :mod:`attrib.delivery`, :mod:`attrib.extractors`, :mod:`attrib.evidence`,
:mod:`attrib.synthetic`, :mod:`attrib.images`, :mod:`attrib.host`, :mod:`attrib.names`, :mod:`attrib.errors`,
:mod:`attrib.version`. Never :mod:`attrib.serve` or :mod:`attrib.batch` (its siblings).
"""

from typing import Callable, ContextManager

DEFAULT_CONDITION = "center-crop:256"  # what every image goes through unless --condition says otherwise
ProgressBar = Callable[[int, str], ContextManager[Callable[[int], None]]]  # (total, label) -> a block's advance(n)
