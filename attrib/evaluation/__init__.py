"""Evaluation: measuring attribution on labelled images.

Owns ``attrib evaluate``'s protocol (:mod:`.protocol`), open-set metrics (:mod:`.metrics`),
image conditions such as crops and JPEG (:mod:`.conditions`), the report's plots
(:mod:`.report`), the synthetic generator zoo (:mod:`.zoo`) and the zoo demo (:mod:`.demo`).
May import the public library API (:mod:`attrib.gallery`, :mod:`attrib.extractors.resolve`),
:mod:`attrib.images`, :mod:`attrib.scoring` constants and :mod:`attrib.errors`; never the CLI.
"""

from typing import Callable, ContextManager

DEFAULT_CONDITION = "center-crop:256"  # what every image goes through unless --condition says otherwise
ProgressBar = Callable[[int, str], ContextManager[Callable[[int], None]]]  # (total, label) -> a block's advance(n)
