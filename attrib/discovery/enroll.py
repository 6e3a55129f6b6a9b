"""``attrib discover --enroll CANDIDATE --generator NAME --from FILE``: one candidate's images enrolled as a
new generator, exactly the images the candidates file lists (each checked against its recorded sha256),
through :meth:`attrib.gallery.Gallery.enroll`, which writes the gallery's audit entry."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

from ..enrollment import EnrollReport
from ..errors import AttribError
from ..extractors.contract import BoundExtractor
from ..gallery import Gallery, Progress
from ..images import read_file
from .candidates import PHOTOGRAPHS, load_candidate


def candidate_files(candidates_file: Path, wanted: str, force: bool = False) -> tuple[dict, list[Path]]:
    """The candidate ``wanted`` of ``candidates_file`` and its member files, each checked to hold the bytes it
    held when discovered; a photographs candidate only with ``force``."""
    _, candidate = load_candidate(candidates_file, wanted)
    if candidate.get("kind") == PHOTOGRAPHS and not force:
        raise AttribError(f"candidate {candidate['id']} of {candidates_file} is labelled photographs (camera photos, "
                          "not a generator); give --force to enroll it anyway")
    paths = []
    for member in candidate.get("members") or []:
        path = Path(member["path"])
        try:
            digest = hashlib.sha256(read_file(path)).hexdigest()
        except AttribError as exc:
            raise AttribError(f"candidate {candidate['id']}: {exc}; run `attrib discover` again") from None
        if digest != member.get("sha256"):
            raise AttribError(f"candidate {candidate['id']}: {path} changed since it was discovered (sha256 "
                              f"{digest[:12]}..., recorded {str(member.get('sha256'))[:12]}...); run `attrib discover` again")
        paths.append(path)
    if not paths:
        raise AttribError(f"candidate {candidate['id']} of {candidates_file} lists no images")
    return candidate, paths


def enroll_candidate(gallery: Gallery, extractors: Sequence[BoundExtractor], candidates_file: Path, wanted: str,
                     generator: str, family: str | None = None, force: bool = False,
                     progress: Progress | None = None) -> EnrollReport:
    """Enroll candidate ``wanted`` of ``candidates_file`` under ``generator`` (see the module docstring)."""
    candidate, paths = candidate_files(candidates_file, wanted, force)
    note = f"discovered: candidate {candidate['id']} ({candidate.get('digest')}) of {Path(candidates_file).name}"
    return gallery.enroll(generator, paths, list(extractors), family=family, note=note, progress=progress)
