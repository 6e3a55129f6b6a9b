"""Evidence beside the forensic answer: which claim is strongest, what it names, whether the
forensic decision agrees, the one-line summary, and ``--trust-metadata`` (verified evidence
decides, and says so). Plain functions of evidence items; nothing here reads files."""

from __future__ import annotations

from typing import Any, Iterable, Protocol, TypeVar

from .item import Evidence
from .names import name_key


class IdentificationRecord(Protocol):
    """What evidence changes of an identification (:class:`attrib.scoring.decision.IdentificationResult`)."""

    decision: str | None
    decision_level: str | None
    generator: str | None
    family: str | None
    confidence: float | None
    reason: str
    evidence: list[dict[str, Any]]
    provenance: dict[str, Any]


class VerificationRecord(Protocol):
    """What evidence adds to a verification (:class:`attrib.scoring.decision.Verification`)."""

    generator: str
    match: bool | None
    evidence: list[dict[str, Any]]
    provenance: dict[str, Any]


IdentificationT = TypeVar("IdentificationT", bound=IdentificationRecord)
VerificationT = TypeVar("VerificationT", bound=VerificationRecord)

# how much a claim is worth: signed and trusted first, unreadable last
_RANK_BY_VERIFIED = {"valid": 6, "untrusted": 5, "invalid": 1}
_RANK_BY_KIND = {"generation-parameters": 4, "watermark": 3}
_DEFAULT_RANK = 2  # exif, xmp, a plugin's unsigned kinds


def rank(item: Evidence) -> int:
    """Strength of one item: 0 unreadable, 1 failed validation, 2 EXIF/XMP, 3 watermark,
    4 generation parameters, 5 signature valid but signer not trusted, 6 trusted signature."""
    if item.error is not None:
        return 0
    if item.verified is not None:
        return _RANK_BY_VERIFIED[item.verified]
    return _RANK_BY_KIND.get(item.kind, _DEFAULT_RANK)


def strongest(evidence: Iterable[Evidence], *, naming: bool = False) -> Evidence | None:
    """The strongest item that names something (a generator when ``naming``), or None.
    Among equals, the first that names a generator in the name rules, then one named from a model
    file (``known`` False), then the first listed."""
    candidates = [e for e in evidence if e.names_something and (e.generator is not None or not naming)]
    if not candidates:
        return None
    return max(candidates, key=lambda e: (rank(e), e.generator is not None, e.known is not False,
                                          -candidates.index(e)))


def _enrolled_as(generator: str, enrolled: Iterable[str]) -> str | None:
    key = name_key(generator)
    return next((name for name in sorted(enrolled) if name_key(name) == key), None)


def verification_phrase(item: Evidence) -> str:
    """``signature valid, signer not verified against a trust list`` and the like; '' if unsigned."""
    if item.verified is None:
        return ""
    if item.verified == "invalid":
        failures = list(item.detail.get("failures") or [])
        return "signature invalid" + (f": {', '.join(failures[:3])}" if failures else "")
    trust = item.detail.get("trust") or ("signer on the trust list" if item.verified == "valid" else "signer not trusted")
    return f"signature valid, {trust}"


def source_phrase(item: Evidence) -> str:
    """Where a claim was found: ``C2PA, signature valid, ...``, ``ComfyUI generation parameters,
    unsigned``, ``EXIF Software, unsigned``."""
    if item.kind == "c2pa":
        return f"C2PA, {verification_phrase(item)}"
    if item.kind == "generation-parameters":
        where = f"{item.detail.get('tool') or 'unknown tool'} generation parameters"
    elif item.kind in ("exif", "xmp"):
        where = f"{item.kind.upper()} {item.detail.get('field', '')}".rstrip()
    else:
        where = item.kind
    return f"{where}, {verification_phrase(item) or 'unsigned'}"


def named_as(item: Evidence) -> str | None:
    """What an item names, for people: ``DALL·E 2``; ``model juggernautXL_v9 (not a known
    generator)`` for a name made from a model file; None when it names no generator."""
    if item.generator is None:
        return None
    name = item.label or item.generator
    return f"model {name} (not a known generator)" if item.known is False else name


def _what(item: Evidence) -> str:
    return named_as(item) or ("AI-generated" if item.ai_generated else "not AI-generated")


def summary_line(evidence: Iterable[Evidence]) -> str | None:
    """``file says: DALL·E 3 (C2PA, signature valid, ...)``; None when the file says nothing.

    Other items naming other generators are listed after it; a manifest store that could not
    be read is said when nothing else is.
    """
    evidence = list(evidence)
    best = strongest(evidence)
    if best is None:
        broken = next((e for e in evidence if e.error is not None and e.kind == "c2pa"), None)
        return None if broken is None else f"file says: nothing readable ({broken.error})"
    line = f"file says: {_what(best)} ({source_phrase(best)})"
    others = sorted({named for e in evidence if e.names_something and e.generator not in (None, best.generator)
                     and (named := named_as(e)) is not None})
    return line + (f"; other evidence names {', '.join(others)}" if others else "")


def agreement(evidence: Iterable[Evidence], decision_generator: str | None, enrolled: Iterable[str]
              ) -> dict[str, Any]:
    """Does the file's claim agree with the forensic decision?

    ``decision_generator``: the generator the forensic answer named (None for unknown,
    ambiguous or a family). Returns ``generator`` / ``label`` / ``kind`` / ``verified`` of the
    strongest item naming a generator, ``ai_generated`` of the strongest item saying so,
    ``enrolled`` (is that generator enrolled), ``enrolled_as`` (its gallery name), ``agrees``
    (True / False / None when the evidence names nothing to compare, or only a model outside the
    name rules that is not enrolled) and ``reason``.
    """
    evidence = list(evidence)
    enrolled = list(enrolled)
    named = strongest(evidence, naming=True)
    stated = strongest(evidence)
    result: dict[str, Any] = {"generator": None, "label": None, "kind": None, "verified": None,
              "ai_generated": stated.ai_generated if stated is not None else None,
              "enrolled": None, "enrolled_as": None, "agrees": None, "reason": "the file names no generator"}
    decided = decision_generator or "unknown"
    if named is None or named.generator is None:  # strongest(naming=True) names a generator
        if stated is not None and stated.ai_generated is False and decision_generator is not None:
            result.update(agrees=False, reason=f"the file says it is not AI-generated; the forensic answer is {decided}")
        return result
    as_enrolled = _enrolled_as(named.generator, enrolled)
    result.update(generator=named.generator, label=named.label, kind=named.kind, verified=named.verified,
                  enrolled=as_enrolled is not None, enrolled_as=as_enrolled)
    if as_enrolled is None and named.known is False:
        result["reason"] = (f"the file names {named_as(named)}, which is not enrolled; not compared with the "
                            f"forensic answer ({decided})")
        return result
    if as_enrolled is not None:
        agrees = decision_generator is not None and name_key(decision_generator) == name_key(as_enrolled)
        reason = f"the file names {as_enrolled}, which is enrolled; the forensic answer is {decided}"
    elif decision_generator is not None:
        agrees = False
        reason = f"the file names {named.generator}, which is not enrolled; the forensic answer is {decided}"
    else:
        agrees = True
        reason = f"the file names {named.generator}, which is not enrolled; the forensic answer (unknown) is consistent"
    result.update(agrees=agrees, reason=reason)
    return result


def decide_with_evidence(forensic_decision: str | None, evidence: Iterable[Evidence], enrolled: Iterable[str],
                         trust_metadata: bool = False) -> dict[str, Any]:
    """The decision to report: the forensic one, unless ``trust_metadata`` and a verified item
    (signature valid, signer on the trust list) names a generator; then that generator (its
    gallery name when enrolled) and ``decided_by`` is the item's kind (``c2pa``).

    Returns ``decision``, ``decided_by`` (``forensic`` or the evidence kind),
    ``forensic_decision`` and ``note`` (why evidence did not decide, when it was asked to).
    """
    evidence = list(evidence)
    result: dict[str, Any] = {"decision": forensic_decision, "decided_by": "forensic",
                              "forensic_decision": forensic_decision, "note": None}
    if not trust_metadata:
        return result
    verified = strongest([e for e in evidence if e.verified == "valid"], naming=True)
    if verified is not None and verified.generator is not None:  # strongest(naming=True) names a generator
        decision = _enrolled_as(verified.generator, enrolled) or verified.generator
        result.update(decision=decision, decided_by=verified.kind)
        return result
    unverified = strongest([e for e in evidence if e.verified == "untrusted"], naming=True)
    if unverified is not None:
        trust = unverified.detail.get("trust") or "signer not trusted"
        result["note"] = (f"{unverified.kind} names {unverified.generator} with a valid signature ({trust}); "
                          "give a trust list (--c2pa-trust FILE) to let it decide")
    elif any(e.names_something for e in evidence):
        result["note"] = "no verified evidence names a generator; unsigned claims never decide"
    return result


def provenance(evidence: Iterable[Evidence], forensic_decision: str | None, decided_generator: str | None,
               enrolled: Iterable[str], trust_metadata: bool = False) -> dict[str, Any]:
    """What a result reports about the file's own claims: ``summary`` (:func:`summary_line`),
    ``agreement`` (:func:`agreement`) and the keys of :func:`decide_with_evidence`."""
    evidence, enrolled = list(evidence), list(enrolled)
    return {"summary": summary_line(evidence), "agreement": agreement(evidence, decided_generator, enrolled),
            **decide_with_evidence(forensic_decision, evidence, enrolled, trust_metadata)}


def apply_to_identification(result: IdentificationT, evidence: Iterable[Evidence], enrolled: Iterable[str],
                            trust_metadata: bool = False) -> IdentificationT:
    """Attach evidence to an :class:`attrib.scoring.decision.IdentificationResult`; when
    ``trust_metadata`` and verified evidence names a generator, it decides, and the reason keeps the
    forensic answer (the confidence, a property of the forensic model, becomes None)."""
    evidence = list(evidence)
    info = provenance(evidence, result.decision, result.generator, enrolled, trust_metadata)
    result.evidence = [item.to_dict() for item in evidence]
    result.provenance = info
    if info["decided_by"] != "forensic":
        result.reason = (f"{info['decision']}: decided by the file's {info['decided_by']} evidence "
                         f"({info['summary']}); forensic answer: {result.reason}")
        result.decision = result.generator = info["decision"]
        result.decision_level, result.family, result.confidence = "generator", None, None
    return result


def apply_to_verification(result: VerificationT, evidence: Iterable[Evidence], enrolled: Iterable[str]
                          ) -> VerificationT:
    """Attach evidence to an :class:`attrib.scoring.decision.Verification` (never changes the match)."""
    evidence = list(evidence)
    result.evidence = [item.to_dict() for item in evidence]
    result.provenance = provenance(evidence, "match" if result.match else "no match",
                                   result.generator if result.match else None, enrolled)
    return result
