"""Which delivery version of a gallery each query is scored against, and the scoring there.

A gallery may hold, per extractor, delivery versions (:mod:`attrib.delivery.versions`): the enrolled
samples embedded once more after each lossy coding of a ladder, each with its own index, whitening,
impostor cohort delivered the same way, thresholds and decision model. For one identify or verify
call, :class:`Router` measures each query's delivery on the loader's threads
(:func:`attrib.delivery.measure_delivery`), picks the version nearest to it among those every
extractor holds for every sample (:func:`attrib.delivery.choose_rung`), and scores the query's one
embedding against that version's index, calibration and fusion. A query never lossy-coded, and every
query of a gallery without versions, is scored against the originals, as before versions existed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .delivery import ORIGINAL, Delivery, choose_rung, delivered, measure_delivery, parse_ladder
from .errors import AttribError
from .extractors.contract import BoundExtractor
from .images import LoadedImage
from .scoring.candidates import QueryScores, score_queries
from .scoring.fusion import Fusion, fit_fusion
from .scoring.open_set import DecisionModel
from .storage.interface import GalleryReads
from .upkeep.freshness import LoadedIndex

OpenView = Callable[[BoundExtractor], LoadedIndex]


def measured(data: bytes, pixels: np.ndarray) -> Delivery | None:
    """The delivery of a decoded file (the loader's ``measure``); None when it cannot be told."""
    try:
        return measure_delivery(data, pixels)
    except AttribError:
        return None


@dataclass
class Decider:
    """How one version decides: the fusion (several extractors), the threshold per generator, the model."""

    fusion: Fusion | None
    threshold: Callable[[int], float]
    model: DecisionModel
    calibrated: bool


class Router:
    """The versions of ``extractors`` in one gallery for one call; views are opened on first use."""

    def __init__(self, reads: Callable[[], GalleryReads], open_view: OpenView, extractors: Sequence[BoundExtractor],
                 cohort_version: str):
        self._reads, self._open_view, self.extractors = reads, open_view, list(extractors)
        self.cohort_version = cohort_version
        self._views: dict[str, list[LoadedIndex]] = {ORIGINAL: [open_view(e) for e in self.extractors]}
        self._deciders: dict[str, Decider] = {}
        self.rungs = self._complete_rungs()

    def _complete_rungs(self) -> tuple[str, ...]:
        """The rungs every extractor holds a vector for every sample of (as many vectors as its originals)."""
        reads = self._reads()
        common: set[str] | None = None
        for bound, view in zip(self.extractors, self._views[ORIGINAL]):
            held = reads.delivery_versions(bound.identity.key)
            complete = {rung for rung, (_, count) in held.items() if count == len(view.ids)}
            common = complete if common is None else common & complete
        return parse_ladder(sorted(common or ()))

    def rung(self, item: LoadedImage) -> str:
        """The version ``item`` is scored against (its ``delivery``, measured by the loader)."""
        delivery = item.delivery
        return choose_rung(delivery, self.rungs) if isinstance(delivery, Delivery) else ORIGINAL

    def views(self, rung: str) -> list[LoadedIndex]:
        if rung not in self._views:
            self._views[rung] = [self._open_view(delivered(e, rung)) for e in self.extractors]
        return self._views[rung]

    @property
    def originals(self) -> list[LoadedIndex]:
        return self._views[ORIGINAL]

    def score(self, position: int, matrix: np.ndarray, rungs: Sequence[str]) -> list[QueryScores]:
        """Scores of each row of ``matrix`` (extractor ``position``'s embeddings) against its rung's version."""
        out: list[QueryScores | None] = [None] * len(rungs)
        for rung in dict.fromkeys(rungs):
            rows = [i for i, r in enumerate(rungs) if r == rung]
            for row, scores in zip(rows, score_queries(self.views(rung)[position], matrix[rows])):
                out[row] = scores
        return [scores for scores in out if scores is not None]

    def decider(self, rung: str) -> Decider:
        if rung not in self._deciders:
            views = self.views(rung)
            fusion = None
            if len(views) > 1:
                reads = self._reads()
                fusion = fit_fusion(reads, views, [reads.cohort(v.extractor_id, self.cohort_version) for v in views])
            stored = fusion.model if fusion else views[0].model
            self._deciders[rung] = Decider(fusion, fusion.threshold if fusion else views[0].threshold,
                                           DecisionModel.from_dict(stored), calibrated=bool(stored))
        return self._deciders[rung]

    def delivery_json(self, item: LoadedImage, rung: str) -> dict[str, Any] | None:
        """What the answer says of the query's delivery and the version it was scored against."""
        delivery = item.delivery
        if not isinstance(delivery, Delivery):
            return None
        return {"describe": delivery.describe(), "version": rung, "versions": [ORIGINAL, *self.rungs],
                "measured": delivery.to_json()}
