"""How images travel: a query's delivery measured from its file (:mod:`.measure`), and a gallery's
delivery versions (:mod:`.versions`): each enrolled image embedded once more after each coding of a
ladder, so that a laundered query is scored against images that travelled the same way.

May import (the layers below it in the import contract, pyproject.toml): :mod:`attrib.extractors`,
:mod:`attrib.evidence`, :mod:`attrib.synthetic`, :mod:`attrib.images`, :mod:`attrib.host`, :mod:`attrib.names`, :mod:`attrib.errors`,
:mod:`attrib.version`.
"""

from .measure import (JPEG, LOSSLESS, LOSSY_WEBP, Delivery, measure_delivery, measured, nearest_version,
                      resize_factor)
from .versions import (DEFAULT_LADDER, LADDER_ENV, ORIGINAL, choose_rung, coded_alike, default_ladder, delivered,
                       parse_ladder, rung_of)

__all__ = ["DEFAULT_LADDER", "JPEG", "LADDER_ENV", "LOSSLESS", "LOSSY_WEBP", "ORIGINAL", "Delivery", "choose_rung", "coded_alike",
           "default_ladder", "delivered", "measure_delivery", "measured", "nearest_version", "parse_ladder", "resize_factor",
           "rung_of"]
