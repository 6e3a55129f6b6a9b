"""Which images discovery groups: the ``unknown`` answers of a batch's records, and image files or folders.

A records file is what ``attrib identify --json ... --output FILE`` writes (JSON lines, one
:meth:`attrib.scoring.decision.IdentificationResult.to_json` object per image). Discovery takes the records
whose ``decision`` is ``unknown``; error records, other decisions and a torn last line are counted, not used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..errors import AttribError
from ..scoring.decision import UNKNOWN


@dataclass
class RecordPaths:
    """The unknown answers of some records files, and what else was in them."""

    paths: list[Path] = field(default_factory=list)
    decided: int = 0  # records answered with a generator, a family or ambiguous
    errors: int = 0  # error records (files identify could not use)
    unreadable: int = 0  # lines that are not a JSON record

    def to_json(self) -> dict[str, int]:
        return {"unknown": len(self.paths), "decided": self.decided, "error_records": self.errors,
                "unreadable_lines": self.unreadable}


def unknown_answers(records_files: Iterable[Path]) -> RecordPaths:
    """The paths of every ``unknown`` record in ``records_files`` (each once, in order)."""
    found = RecordPaths()
    seen: set[str] = set()
    for records in records_files:
        try:
            lines = Path(records).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            raise AttribError(f"cannot read records file {records}: {exc.strerror or exc}; give the --output FILE "
                              "of `attrib identify --json`") from None
        for line in lines:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                found.unreadable += 1
                continue
            if not isinstance(record, dict) or not isinstance(record.get("path"), str):
                found.unreadable += 1
            elif record.get("error") is not None:
                found.errors += 1
            elif record.get("decision") != UNKNOWN:
                found.decided += 1
            elif record["path"] not in seen:
                seen.add(record["path"])
                found.paths.append(Path(record["path"]))
    if not found.paths and not found.unreadable and not (found.decided or found.errors):
        raise AttribError(f"no identify records in {', '.join(map(str, records_files))}; give the --output FILE of "
                          "`attrib identify --json`")
    return found
