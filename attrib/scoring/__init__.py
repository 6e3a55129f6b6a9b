"""Scoring: how embeddings become decisions.

Owns the whitening fitted on the gallery (:mod:`.whitening`), per-generator scores and
held-out calibration of thresholds (:mod:`.calibration`), fusing several extractors
(:mod:`.fusion`) and the decision with its result types (:mod:`.decision`). Pure numpy on
arrays it is given: may import :mod:`attrib.errors` only; it reads stored vectors through
the storage interface object it is handed, never by importing storage.
"""

DEFAULT_TARGET_FAR = 0.01  # the false-accept rate thresholds are calibrated at unless told otherwise
