"""One piece of provenance evidence: what a file says about where it came from."""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

KINDS = ("c2pa", "generation-parameters", "exif", "xmp", "watermark")
Verified = Literal["valid", "invalid", "untrusted"]  # a signed item's signature check; None for unsigned claims
VERIFIED: tuple[Verified, ...] = get_args(Verified)
MAX_CLAIM_CHARS = 300
MAX_DETAIL_CHARS = 200
MAX_NAME_CHARS = 80  # generator names and labels
_SURROGATES = re.compile("[\ud800-\udfff]")
_CLIPPED = re.compile(r"… \([\d,]+ characters\)")  # what clip() puts after the first ``limit`` characters


def encodable(text: str) -> str:
    """``text`` with every lone surrogate (a JSON ``"\\ud800"`` escape decodes to one; UTF-8 cannot
    carry it) replaced by U+FFFD."""
    return _SURROGATES.sub("\ufffd", text)


def clip(text: str, limit: int = MAX_CLAIM_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis and the full length,
    encodable as UTF-8. Only the start of a long text is read (its length is the raw one); a text
    clipped already is kept as it is."""
    text = str(text)
    head = text[: 4 * limit + 64]
    flat = encodable(" ".join(head.split()))
    if len(head) == len(text) and (len(flat) <= limit or _CLIPPED.fullmatch(flat, limit)):
        return flat
    return f"{flat[:limit]}… ({len(text) if len(head) < len(text) else len(flat):,} characters)"


def _small(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of ``value``: every string clipped and encodable, containers bounded, a
    float that JSON cannot carry (NaN, Infinity) None."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return clip(value, MAX_DETAIL_CHARS)
    if depth >= 4:
        return clip(json.dumps(value, default=str), MAX_DETAIL_CHARS)
    if isinstance(value, dict):
        return {clip(str(k), 60): _small(v, depth + 1) for k, v in itertools.islice(value.items(), 40)}
    if isinstance(value, (list, tuple, set)):
        return [_small(v, depth + 1) for v in itertools.islice(value, 40)]
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
    be read; such an item claims nothing. ``reader``: the reader that produced it. ``known``:
    whether ``generator`` is one of the generator-name rules (True) or made from what the file
    calls its model, e.g. a checkpoint's file name (False); None when no generator is named.
    Every string is encodable as UTF-8 and every number finite, so the item is strict JSON.
    """

    kind: str
    claim: str = ""
    generator: str | None = None
    label: str | None = None
    ai_generated: bool | None = None
    verified: Verified | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    reader: str = ""
    known: bool | None = None

    def __post_init__(self) -> None:
        if self.verified is not None and self.verified not in VERIFIED:
            raise ValueError(f"verified must be one of {VERIFIED} or None, got {self.verified!r}")
        if self.ai_generated not in (True, False, None):
            raise ValueError(f"ai_generated must be True, False or None, got {self.ai_generated!r}")
        if self.known not in (True, False, None):
            raise ValueError(f"known must be True, False or None, got {self.known!r}")
        set_field = functools.partial(object.__setattr__, self)
        set_field("kind", clip(self.kind, MAX_NAME_CHARS))
        set_field("reader", clip(self.reader, MAX_NAME_CHARS))
        set_field("claim", clip(self.claim))
        set_field("detail", _small(dict(self.detail)))
        if self.error is not None:
            set_field("error", clip(self.error, MAX_DETAIL_CHARS))
        for name in ("generator", "label"):
            if getattr(self, name) is not None:
                set_field(name, clip(getattr(self, name), MAX_NAME_CHARS))
        set_field("known", None if self.generator is None else (True if self.known is None else self.known))

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
