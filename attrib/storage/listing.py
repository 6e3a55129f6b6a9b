"""The listing and audit reads and writes of the SQLAlchemy store (:class:`attrib.storage.sql.SQLStore`
and its PostgreSQL subclass), for ``attrib gallery list``, ``show`` and ``audit``."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from . import models as db
from .interface import SQLSessions


class ListingMixin:
    """Generators with their counts and thresholds, one generator in detail, the audit trail; needs the
    store's sessions (``reading`` and ``writing``)."""

    # -- listing and audit ----------------------------------------------

    def generator_rows(self: SQLSessions) -> list[dict[str, Any]]:
        """Every generator with its sample count and (latest extractor's) threshold, by name."""
        with self.reading() as session:
            rows = session.execute(
                select(db.Generator, func.count(db.Sample.id))
                .outerjoin(db.Sample)
                .group_by(db.Generator.id)
                .order_by(db.Generator.name)
            ).all()
            cal = {
                c.generator_id: c
                for c in session.scalars(select(db.Calibration).order_by(db.Calibration.extractor_id.desc()))
            }
        out = []
        for gen, count in rows:
            c = cal.get(gen.id)
            out.append({"name": gen.name, "family": gen.family, "note": gen.note, "samples": int(count),
                        "threshold": c.threshold if c else None, "threshold_method": c.method if c else None,
                        "created_at": gen.created_at.isoformat(timespec="seconds")})
        return out

    def generator_detail(self: SQLSessions, name: str) -> dict[str, Any]:
        with self.reading() as session:
            gen = db.named_generator(session, name)
            samples = [
                {
                    "id": s.id,
                    "sha256": s.sha256,
                    "path": s.path,
                    "format": s.format,
                    "width": s.width,
                    "height": s.height,
                    "size_bytes": s.size_bytes,
                    "enrolled_at": s.created_at.isoformat(timespec="seconds"),
                }
                for s in gen.samples
            ]
            calibration = [
                {
                    "extractor": db.stored_extractor(session, c.extractor_id).key,
                    "threshold": c.threshold,
                    "method": c.method,
                    "target_far": c.target_far,
                    "n_genuine": c.n_genuine,
                    "n_impostor": c.n_impostor,
                    "tar": c.tar,
                }
                for c in session.scalars(select(db.Calibration).where(db.Calibration.generator_id == gen.id))
            ]
            return {
                "name": gen.name,
                "family": gen.family,
                "note": gen.note,
                "created_at": gen.created_at.isoformat(timespec="seconds"),
                "samples": samples,
                "calibration": calibration,
            }

    def audit(self: SQLSessions, action: str, detail: dict[str, Any]) -> None:
        with self.writing() as session:
            session.add(db.Audit(action=action, detail=json.dumps(detail)))

    def audit_log(self: SQLSessions, limit: int | None = None, action: str | None = None) -> list[dict[str, Any]]:
        """The audit trail, oldest first: the last ``limit`` entries (all when None),
        optionally of one ``action`` (enroll, remove, calibrate, reembed)."""
        query = select(db.Audit).order_by(db.Audit.id.desc())
        if action:
            query = query.where(db.Audit.action == action)
        if limit is not None:
            query = query.limit(limit)
        with self.reading() as session:
            rows = list(session.scalars(query))
        return [
            {"id": r.id, "at": r.at.isoformat(timespec="seconds") + "Z", "action": r.action,
             "detail": json.loads(r.detail)}
            for r in reversed(rows)
        ]

