"""Provenance evidence: what a file says about where it came from, beside the forensic answer.

Owns the evidence item (:mod:`.item`), the claim-to-generator rules shipped as data
(:mod:`.names`, ``generators.json``), the built-in readers (:mod:`.c2pa_manifest`,
:mod:`.parameters`, :mod:`.exif_xmp`, registered by :mod:`.builtin` through the
``register_evidence`` hook), reading a file (:mod:`.read`) and combining evidence with a
decision (:mod:`.combine`). May import :mod:`attrib.errors` and :mod:`attrib.host`; Pillow
and defusedxml; ``c2pa`` only for a file whose bytes show a manifest store.

    from attrib.evidence import read_evidence, summary_line, agreement
    items = read_evidence("image.webp")
    print(summary_line(items))                       # file says: DALL·E 3 (C2PA, ...)
    agreement(items, decision_generator="sdxl", enrolled={"sdxl", "dall-e-3"})
"""

from __future__ import annotations

from .combine import agreement, decide_with_evidence, rank, strongest, summary_line
from .item import KINDS, VERIFIED, Evidence
from .names import GeneratorNames, generator_names, name_key
from .read import evidence_readers, load_trust_list, read_evidence, run_reader
from .source import EvidenceSource

__all__ = [
    "KINDS", "VERIFIED", "Evidence", "EvidenceSource", "GeneratorNames", "agreement", "decide_with_evidence",
    "evidence_readers", "generator_names", "load_trust_list", "name_key", "rank", "read_evidence", "run_reader",
    "strongest", "summary_line",
]
