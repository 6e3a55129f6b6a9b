"""Scoring: how embeddings become decisions.

Owns fitting the whitening on the gallery and when to refit it (:mod:`.whitening`; the fitted value
is :class:`attrib.index.whitening.Whitening`), per-generator scores and held-out calibration of
thresholds (:mod:`.calibration`, :mod:`.open_set`, :mod:`.incremental`), the candidate generators of
a batch of queries (:mod:`.candidates`), fusing several extractors (:mod:`.fusion`) and the decision
with its result types (:mod:`.decision`). Pure numpy on the arrays and loaded indexes it is given;
stored vectors come through the storage interface object it is handed.

May import (the layers below it in the import contract, pyproject.toml): :mod:`attrib.index`,
:mod:`attrib.delivery`, :mod:`attrib.extractors`, :mod:`attrib.evidence`, :mod:`attrib.synthetic`, :mod:`attrib.images`,
:mod:`attrib.host`, :mod:`attrib.names`, :mod:`attrib.errors`, :mod:`attrib.version`. Never :mod:`attrib.storage` (its
sibling).
"""

DEFAULT_TARGET_FAR = 0.01  # the false-accept rate thresholds are calibrated at unless told otherwise
