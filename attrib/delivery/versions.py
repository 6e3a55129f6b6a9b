"""A gallery's delivery versions.

A gallery enrolled from original files holds, per extractor, one more set of vectors per *rung* of a
ladder of lossy codings (``jpeg:90``, ``jpeg:70``, ``webp:80`` ...): the same samples embedded after a
round trip through that coding (:func:`delivered`). Each version is an extractor row of its own
(identity key ``residual@2|jpeg:80``), with its own whitening, index, impostor cohort (embedded after
the same coding) and thresholds. A query is embedded once, as it is, and scored against the version
its measured delivery is nearest to (:func:`choose_rung`): the originals for a file never
lossy-coded, else the rung nearest its JPEG (or WebP) quality.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

from ..errors import BadOption
from ..extractors.contract import BoundExtractor, DeliveredExtractor
from ..synthetic.conditions import parse_condition
from .measure import LOSSY_WEBP, RESIZE_TOLERANCE, Delivery, nearest_version, resize_factor

ORIGINAL = "original"  # the version of a query scored against the enrolled files as they are
# the ladder a new gallery gets; measured against smaller and larger ones in docs/measured.md
DEFAULT_LADDER: tuple[str, ...] = ("jpeg:90", "jpeg:80", "jpeg:70", "jpeg:60", "jpeg:50", "webp:80")
NEAR = 5  # JPEG quality steps: a JPEG-coded query farther than this from every JPEG rung keeps the originals
LADDER_ENV = "ATTRIB_DELIVERY_LADDER"
FORMS = ("comma-separated jpeg:Q (quality 1-100) and webp:Q (quality 0-100) rungs, e.g. jpeg:90,jpeg:70,webp:80; "
         "default (the default ladder); or none")


def parse_ladder(text: str | Iterable[str]) -> tuple[str, ...]:
    """Canonical rungs of ``"jpeg:90,jpeg:70,webp:80"`` (or of a list of rungs; ``default`` stands for
    :data:`DEFAULT_LADDER`): JPEG rungs first, each kind by quality, highest first, without repeats;
    ``none`` or nothing -> (). BadOption names a bad rung."""
    parts = [p.strip() for p in (text.split(",") if isinstance(text, str) else text) if str(p).strip()]
    if [p.lower() for p in parts] in ([], ["none"]):
        return ()
    parts = [rung for p in parts for rung in (DEFAULT_LADDER if p.lower() == "default" else [p])]
    rungs: dict[str, tuple[int, int]] = {}
    for part in parts:
        try:
            steps = parse_condition(part).steps
        except Exception as exc:  # noqa: BLE001 - AttribError naming the bad part
            why = str(exc).split("; valid forms")[0]
            raise BadOption(f"delivery ladder rung {part!r} is not usable ({why}); use {FORMS}") from None
        if len(steps) != 1 or steps[0].kind not in ("jpeg", "webp"):
            raise BadOption(f"delivery ladder rung {part!r} is not a single lossy coding; use {FORMS}")
        rung = str(steps[0])
        rungs[rung] = (0 if steps[0].kind == "jpeg" else 1, -int(steps[0].value or 0))
    return tuple(sorted(rungs, key=rungs.__getitem__))


def default_ladder() -> tuple[str, ...]:
    """$ATTRIB_DELIVERY_LADDER when set (``none`` for no versions), else :data:`DEFAULT_LADDER`."""
    text = os.environ.get(LADDER_ENV)
    return DEFAULT_LADDER if text is None else parse_ladder(text)


def delivered(extractor: BoundExtractor, rung: str) -> DeliveredExtractor:
    """``extractor`` embedding every image after the lossy round trip ``rung`` (e.g. ``jpeg:80``)."""
    (rung,) = parse_ladder([rung])
    condition = parse_condition(rung)
    return DeliveredExtractor(extractor, rung, condition.apply)


def rung_of(key: str) -> str:
    """The rung of an extractor identity key: ``residual@2|jpeg:80`` -> ``jpeg:80``; a key without one -> original."""
    _, bar, rung = key.rpartition("|")
    return rung if bar else ORIGINAL


def choose_rung(delivery: Delivery, rungs: Sequence[str]) -> str:
    """The version a query of ``delivery`` is scored against: :data:`ORIGINAL` or one of ``rungs``
    (:func:`attrib.delivery.nearest_version`). A file lossy-coded on its way (a JPEG or lossy WebP, or a
    lossless file JPEG-coded before) is scored against the nearest rung when that is within :data:`NEAR` of
    its quality; any other against the originals."""
    if not rungs or (delivery.quality is None and delivery.coding != LOSSY_WEBP):
        return ORIGINAL
    rung = nearest_version(delivery, list(rungs))
    kind, _, number = rung.partition(":")
    if delivery.coding != LOSSY_WEBP and kind == "jpeg" and abs(int(number) - (delivery.quality or 0)) > NEAR:
        return ORIGINAL  # e.g. a photograph JPEG'd at 98 before it was saved as PNG: nearly the original
    return rung


SAME_CODING = 3  # JPEG / WebP quality steps within which a query's coding counts as a generator's own


def coded_alike(own: str, delivery: Delivery, sides: Iterable[int] = ()) -> bool:
    """Whether a generator whose enrolled files showed the coding ``own`` (``jpeg:75``, ``webp:80``,
    ``lossless``: :attr:`Delivery.label`) published them coded as the query was: within
    :data:`SAME_CODING` of the query's quality, of the same kind, and (given the long ``sides`` of its
    files) at one of their sizes: a resized query was coded again after the resize. Such a generator's
    originals already look like the query, so it is scored against them rather than against a version
    coded once more."""
    sides = list(sides)
    if sides and abs(resize_factor((delivery.width, delivery.height), [(s, s) for s in sides]) - 1) > RESIZE_TOLERANCE:
        return False
    kind, _, number = own.partition(":")
    if delivery.coding == LOSSY_WEBP:
        quality, wanted = delivery.webp_quality, "webp"
    else:
        quality, wanted = delivery.quality, "jpeg"
    if kind != wanted or quality is None or not number.isdigit():
        return False
    return abs(int(number) - quality) <= SAME_CODING
