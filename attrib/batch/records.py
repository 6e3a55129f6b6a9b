"""One record per image: the JSON objects ``identify --json`` and ``verify --json`` print
(:meth:`attrib.scoring.decision.IdentificationResult.to_json`, ``Verification.to_json``), and the
flat CSV rows made from them.

CSV columns (empty for a value that does not apply; an error row has only ``path`` and ``error``):

identify: path, sha256, decision, decision_level (generator, family, ambiguous, unknown), generator,
family, nearest, confidence, score, threshold, margin, reason, decided_by (forensic or the evidence
that decided), candidates (``name score/threshold; ...``, best first), flags (``; ``-joined),
provenance (what the file itself says, in words), extractor, error.

verify: path, sha256, generator, match (true/false), confidence, score, threshold, margin,
provenance, extractor, error.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ..scoring.decision import IdentificationResult, Verification

Record = dict[str, Any]  # one JSON object, as ``to_json`` makes it

IDENTIFY_COLUMNS = ("path", "sha256", "decision", "decision_level", "generator", "family", "nearest", "confidence",
                    "score", "threshold", "margin", "reason", "decided_by", "candidates", "flags", "provenance",
                    "extractor", "error")
VERIFY_COLUMNS = ("path", "sha256", "generator", "match", "confidence", "score", "threshold", "margin",
                  "provenance", "extractor", "error")
FORMATS = ("jsonl", "csv")
_SURROGATES = re.compile("[\ud800-\udfff]")


def json_safe(value: Any) -> Any:
    """``value`` as strict JSON can carry it: NaN and Infinity None, lone surrogates U+FFFD, keys
    strings, anything else its ``str``."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return _SURROGATES.sub("\ufffd", value)
    if isinstance(value, dict):
        return {json_safe(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return json_safe(str(value))


def json_text(value: Any) -> str:
    """``value`` as one line of strict JSON (RFC 8259) that UTF-8 can carry, whatever it holds: a
    value with NaN, Infinity, a lone surrogate or a type JSON lacks goes through :func:`json_safe`,
    so that one odd record never stops a run."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(json_safe(value), ensure_ascii=False, allow_nan=False)
    return json.dumps(json_safe(value), ensure_ascii=False, allow_nan=False) if _SURROGATES.search(text) else text


def result_record(result: IdentificationResult | Verification) -> Record:
    """The record of an IdentificationResult or Verification, its path made printable first
    (:func:`attrib.images.display_path`), so a file name that is not UTF-8 still gives valid UTF-8."""
    from ..images import display_path

    result.path = display_path(result.path)
    return result.to_json()


def record_outcome(record: Record) -> str | None:
    """What a record decided, for counting: the decision (identify), ``match`` / ``no match``
    (verify), or None for an error record."""
    if record.get("error") is not None:
        return None
    if "match" in record:
        return "match" if record["match"] else "no match"
    return record.get("decision")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _candidates(record: Record) -> str:
    return "; ".join(f"{c['generator']} {c['score']:.6f}/{c['threshold']:.6f}" for c in record.get("candidates", ()))


_DERIVED: dict[str, Callable[[Record], str]] = {
    "candidates": _candidates,
    "flags": lambda r: "; ".join((r.get("explain") or {}).get("flags", ())),
    "provenance": lambda r: (r.get("provenance") or {}).get("summary") or "",
}


def csv_row(record: Record, columns: tuple[str, ...]) -> list[str]:
    """``record`` as the cells of ``columns``."""
    return [_DERIVED[c](record) if c in _DERIVED else _cell(record.get(c)) for c in columns]


class RecordFormat:
    """How records become text: JSON lines, or CSV with a header of ``columns``. Every encoded
    record is one text ending in a newline (a CSV field may hold a newline inside its quotes)."""

    def __init__(self, name: str, columns: tuple[str, ...]) -> None:
        if name not in FORMATS:
            raise ValueError(f"unknown record format {name!r}")
        self.name, self.columns = name, tuple(columns)

    @property
    def header(self) -> str | None:
        return self._csv_line(list(self.columns)) if self.name == "csv" else None

    def encode(self, record: Record) -> str:
        if self.name == "jsonl":
            return json_text(record) + "\n"
        return self._csv_line(csv_row(record, self.columns))

    @staticmethod
    def _csv_line(cells: list[str]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(cells)
        return buffer.getvalue()
