"""One piece of provenance evidence: what a file says about where it came from."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("c2pa", "generation-parameters", "exif", "xmp", "watermark")
VERIFIED = ("valid", "invalid", "untrusted")  # for signed evidence; None for unsigned claims
MAX_CLAIM_CHARS = 300
MAX_DETAIL_CHARS = 200


def clip(text: str, limit: int = MAX_CLAIM_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis and the full length."""
    flat = " ".join(str(text).split())
    if len(flat) <= limit:
        return flat
    return f"{flat[:limit]}… ({len(flat):,} characters)"


def _small(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of ``value`` with every string clipped and containers bounded."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return clip(value, MAX_DETAIL_CHARS)
    if depth >= 4:
        return clip(json.dumps(value, default=str), MAX_DETAIL_CHARS)
    if isinstance(value, dict):
        return {clip(str(k), 60): _small(v, depth + 1) for k, v in list(value.items())[:40]}
    if isinstance(value, (list, tuple, set)):
        return [_small(v, depth + 1) for v in list(value)[:40]]
    if isinstance(value, bytes):
        return clip(value[:MAX_DETAIL_CHARS].decode("latin-1"), MAX_DETAIL_CHARS)
    return clip(str(value), MAX_DETAIL_CHARS)


@dataclass(frozen=True)
class Evidence:
    """What a file says about its origin, as one claim.

    ``kind``: where it was found (``c2pa``, ``generation-parameters``, ``exif``, ``xmp``,
    ``watermark``; a plugin may add its own). ``claim``: the raw text, clipped. ``generator``:
    the normalised generator it names (``dall-e-3``, ``sdxl``, ...), or None; ``label`` its
    display name. ``ai_generated``: True / False when the claim says so, else None.
    ``verified``: for signed evidence ``valid`` (signature valid, signer on the trust list),
    ``untrusted`` (signature valid, signer not verified against a trust list or not on it),
    ``invalid`` (validation failed; ``detail["failures"]`` has the codes); None when unsigned.
    ``detail``: a small JSON-safe dict. ``error``: set when the evidence was there but could not
    be read; such an item claims nothing. ``reader``: the reader that produced it.
    """

    kind: str
    claim: str = ""
    generator: str | None = None
    label: str | None = None
    ai_generated: bool | None = None
    verified: str | None = None
    detail: dict = field(default_factory=dict)
    error: str | None = None
    reader: str = ""

    def __post_init__(self):
        if self.verified is not None and self.verified not in VERIFIED:
            raise ValueError(f"verified must be one of {VERIFIED} or None, got {self.verified!r}")
        if self.ai_generated not in (True, False, None):
            raise ValueError(f"ai_generated must be True, False or None, got {self.ai_generated!r}")
        object.__setattr__(self, "claim", clip(self.claim))
        object.__setattr__(self, "detail", _small(dict(self.detail)))
        if self.error is not None:
            object.__setattr__(self, "error", clip(self.error, MAX_DETAIL_CHARS))

    @classmethod
    def failure(cls, kind: str, error: str, reader: str = "", **detail: Any) -> "Evidence":
        """Evidence that was present but unreadable: it names nothing and claims nothing."""
        return cls(kind=kind, error=error, reader=reader, detail=detail)

    @property
    def names_something(self) -> bool:
        """Whether it names a generator or says whether the image is AI-generated."""
        return self.error is None and (self.generator is not None or self.ai_generated is not None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with every field (None where unknown)."""
        return asdict(self)
