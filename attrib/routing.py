"""Which delivery version of a gallery each query is scored against, and the scoring there.

A gallery may hold, per extractor, delivery versions (:mod:`attrib.delivery.versions`): the enrolled
samples embedded once more after each lossy coding of a ladder, each with its own index, whitening,
impostor cohort delivered the same way, thresholds and decision model. For one identify or verify
call, :class:`Router` reads each query's delivery (measured on the loader's threads,
:func:`attrib.delivery.measured`) and makes a :class:`Plan`: the version nearest that delivery among
those every extractor holds for every sample (:func:`attrib.delivery.choose_rung`), except for the
generators whose own enrolled files were coded as the query was (:func:`attrib.delivery.coded_alike`:
a generator that publishes JPEGs at 75, and a query at 75), which are scored against their originals.
The query is embedded once and scored against each version its plan names; every generator's score,
threshold and confidence come from its own version. A query never lossy-coded, and every query of a
gallery without versions, is scored against the originals alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .delivery import ORIGINAL, Delivery, choose_rung, coded_alike, delivered, parse_ladder
from .extractors.contract import BoundExtractor
from .images import LoadedImage
from .scoring.candidates import QueryScores, score_queries
from .scoring.decision import Candidate, rank
from .scoring.fusion import Fusion, fit_fusion
from .scoring.open_set import DecisionModel
from .storage.interface import GalleryReads
from .upkeep.freshness import LoadedIndex

OpenView = Callable[[BoundExtractor], LoadedIndex]
Scored = dict[str, list[QueryScores]]  # version -> one QueryScores per extractor, for one query


@dataclass
class Decider:
    """How one version decides: the fusion (several extractors), the threshold per generator, the model."""

    fusion: Fusion | None
    threshold: Callable[[int], float]
    model: DecisionModel
    calibrated: bool


@dataclass(frozen=True)
class Plan:
    """Where one query is scored: ``rung`` for every generator but those in ``alike`` (their originals)."""

    rung: str = ORIGINAL
    alike: frozenset[int] = field(default_factory=frozenset)

    def version_of(self, generator_id: int) -> str:
        return ORIGINAL if generator_id in self.alike else self.rung

    @property
    def versions(self) -> list[str]:
        return [self.rung] + ([ORIGINAL] if self.alike and self.rung != ORIGINAL else [])


class Router:
    """The versions of ``extractors`` in one gallery for one call; views are opened on first use."""

    def __init__(self, reads: Callable[[], GalleryReads], open_view: OpenView, extractors: Sequence[BoundExtractor],
                 cohort_version: str):
        self._reads, self._open_view, self.extractors = reads, open_view, list(extractors)
        self.cohort_version = cohort_version
        self._views: dict[str, list[LoadedIndex]] = {ORIGINAL: [open_view(e) for e in self.extractors]}
        self._deciders: dict[str, Decider] = {}
        self.rungs = self._complete_rungs()
        self.own = self._reads().generator_deliveries() if self.rungs else {}

    def _complete_rungs(self) -> tuple[str, ...]:
        """The rungs every extractor holds a vector for every sample of (as many vectors as its originals)."""
        reads = self._reads()
        common: set[str] | None = None
        for bound, view in zip(self.extractors, self._views[ORIGINAL]):
            held = reads.delivery_versions(bound.identity.key)
            complete = {rung for rung, (_, count) in held.items() if count == len(view.ids)}
            common = complete if common is None else common & complete
        return parse_ladder(sorted(common or ()))

    @property
    def originals(self) -> list[LoadedIndex]:
        return self._views[ORIGINAL]

    def plan(self, item: LoadedImage) -> Plan:
        """Where ``item`` is scored, from its ``delivery`` (measured by the loader)."""
        delivery = item.delivery
        if not isinstance(delivery, Delivery):
            return Plan()
        rung = choose_rung(delivery, self.rungs)
        if rung == ORIGINAL:
            return Plan()
        return Plan(rung, frozenset(gid for gid, (own, sides) in self.own.items() if coded_alike(own, delivery, sides)))

    def views(self, version: str) -> list[LoadedIndex]:
        if version not in self._views:
            self._views[version] = [self._open_view(delivered(e, version)) for e in self.extractors]
        return self._views[version]

    def score(self, matrices: Sequence[np.ndarray], plans: Sequence[Plan]) -> list[Scored]:
        """Per query (row ``i`` of each extractor's matrix, planned ``plans[i]``): its scores against every
        version its plan names."""
        out: list[Scored] = [{} for _ in plans]
        for version in dict.fromkeys(v for plan in plans for v in plan.versions):
            rows = [i for i, plan in enumerate(plans) if version in plan.versions]
            per_extractor = [score_queries(view, matrix[rows]) for view, matrix in zip(self.views(version), matrices)]
            for position, row in enumerate(rows):
                out[row][version] = [scores[position] for scores in per_extractor]
        return out

    def decider(self, version: str) -> Decider:
        if version not in self._deciders:
            views = self.views(version)
            fusion = None
            if len(views) > 1:
                reads = self._reads()
                fusion = fit_fusion(reads, views, [reads.cohort(v.extractor_id, self.cohort_version) for v in views])
            stored = fusion.model if fusion else views[0].model
            self._deciders[version] = Decider(fusion, fusion.threshold if fusion else views[0].threshold,
                                              DecisionModel.from_dict(stored), calibrated=bool(stored))
        return self._deciders[version]

    def ranked(self, plan: Plan, scored: Scored, names: dict[int, str], families: dict[int, str | None]
               ) -> tuple[list[tuple[int, Candidate]], DecisionModel]:
        """Every scored generator as a Candidate, best first by score as within one version (a score is a
        cosine in its version's whitened space), each with the threshold and confidence of the version its
        plan names; and the model the decision is taken with (that of the plan's rung)."""
        merged: dict[int, float] = {}
        for version, queries in scored.items():
            decider = self.decider(version)
            scores = decider.fusion.rank([q.scores for q in queries]) if decider.fusion else queries[0].scores
            merged.update((gid, value) for gid, value in scores.items() if plan.version_of(gid) == version)
        model = self.decider(plan.rung).model
        candidates = rank(merged, lambda gid: self.decider(plan.version_of(gid)).threshold(gid), model, names,
                          families)
        for gid, candidate in candidates:
            if plan.version_of(gid) != plan.rung:
                candidate.confidence = self.decider(ORIGINAL).model.p_known(candidate.margin, gid)
        return candidates, model

    def flags(self, reads: GalleryReads, item: LoadedImage, rung: str, name: str) -> list[str]:
        """What makes this query special: an exact copy of an enrolled file, recompression that no delivery
        version of the gallery matches, an uncalibrated version (``name``: the extractor, for the fix)."""
        flags = []
        owner = reads.sample_owner(item.sha256)
        if owner is not None:
            flags.append(f"exact copy of a sample enrolled under {owner} (same sha256)")
        if item.compression and rung == ORIGINAL:
            flags.append(f"recompressed ({item.compression}) and scored against the originals: attribution is less "
                         "reliable" + ("" if self.rungs else "; `attrib gallery reembed --versions default` adds "
                                       "delivery versions to this gallery"))
        if not self.decider(rung).calibrated:
            flags.append("confidence is not calibrated: this gallery has no impostor cohort yet; run `attrib gallery "
                         f"reembed --extractor {name}` once to add it")
        return flags

    def delivery_json(self, item: LoadedImage, plan: Plan, names: dict[int, str]) -> dict[str, Any] | None:
        """What the answer says of the query's delivery and the version it was scored against."""
        delivery = item.delivery
        if not isinstance(delivery, Delivery):
            return None
        out: dict[str, Any] = {"describe": delivery.describe(), "version": plan.rung,
                               "versions": [ORIGINAL, *self.rungs], "measured": delivery.to_json()}
        if plan.alike:
            out["originals_for"] = sorted(names[gid] for gid in plan.alike if gid in names)
        return out
