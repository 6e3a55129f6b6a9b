"""Provenance evidence: what a file says about where it came from, beside the forensic answer.

Owns the evidence item (:mod:`.item`), the claim-to-generator rules shipped as data
(:mod:`.names`, ``generators.json``), the built-in readers (:mod:`.c2pa_manifest`,
:mod:`.parameters`, :mod:`.exif_xmp`, registered by :mod:`.builtin` through the
``register_evidence`` hook), reading a file (:mod:`.read`) and combining evidence with a
decision (:mod:`.combine`). Needs Pillow and defusedxml, and ``c2pa`` only for a file whose bytes
show a manifest store. The modules below are imported lazily, so registering the built-in readers costs no
start-up time.

    from attrib.evidence import read_evidence, summary_line, agreement
    items = read_evidence("image.webp")
    print(summary_line(items))                       # file says: DALL·E 3 (C2PA, ...)
    agreement(items, decision_generator="sdxl", enrolled={"sdxl", "dall-e-3"})

May import (the layers below it in the import contract, pyproject.toml): :mod:`attrib.images`,
:mod:`attrib.host`, :mod:`attrib.names`, :mod:`attrib.errors`, :mod:`attrib.version`. Never :mod:`attrib.extractors` or
:mod:`attrib.synthetic` (its siblings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_LAZY = {
    "agreement": "combine", "decide_with_evidence": "combine", "rank": "combine", "strongest": "combine",
    "summary_line": "combine", "provenance": "combine", "apply_to_identification": "combine",
    "apply_to_verification": "combine", "file_inspector": "read", "KINDS": "item", "VERIFIED": "item", "Evidence": "item",
    "GeneratorNames": "names", "generator_names": "names", "name_key": "names",
    "evidence_readers": "read", "load_trust_list": "read", "names_for": "read", "read_evidence": "read",
    "run_reader": "read", "EvidenceSource": "source",
}

__all__ = sorted(_LAZY)

if TYPE_CHECKING:  # pragma: no cover - ``name as name``: re-exported for mypy, which cannot read __all__ here
    from .combine import (agreement as agreement, apply_to_identification as apply_to_identification,
                          apply_to_verification as apply_to_verification, decide_with_evidence as decide_with_evidence,
                          provenance as provenance, rank as rank, strongest as strongest, summary_line as summary_line)
    from .item import KINDS as KINDS, VERIFIED as VERIFIED, Evidence as Evidence
    from .names import GeneratorNames as GeneratorNames, generator_names as generator_names, name_key as name_key
    from .read import (evidence_readers as evidence_readers, file_inspector as file_inspector,
                       load_trust_list as load_trust_list, names_for as names_for, read_evidence as read_evidence,
                       run_reader as run_reader)
    from .source import EvidenceSource as EvidenceSource


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
