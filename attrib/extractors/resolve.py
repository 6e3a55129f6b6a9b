"""Resolving what the user typed into bound extractors: ``residual``, ``clip -o model=...``, ``residual+effnet``.

A name joined with ``+`` fuses several extractors; their options are given as
``NAME.key=value``. Without a name, a gallery's only extractor is used, else
:data:`DEFAULT_EXTRACTOR`.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from ..errors import AttribError
from ..host.manager import get_extractor_spec
from . import DEFAULT_EXTRACTOR
from .contract import BoundExtractor
from .options import parse_options


def bind_extractor(name: str | None, options: Sequence[str] | dict[str, str] = (),
                   gallery_extractors: Iterable[str] = ()) -> BoundExtractor:
    """Bind one extractor; without ``name``, the only one of ``gallery_extractors``, else the default."""
    if name is None:
        names = set(gallery_extractors)
        name = names.pop() if len(names) == 1 else DEFAULT_EXTRACTOR
    parsed = dict(options) if isinstance(options, dict) else parse_options(options)
    return BoundExtractor(get_extractor_spec(name), parsed)


def bind_fused(names: str, options: Sequence[str] = ()) -> list[BoundExtractor]:
    """Bind each extractor of ``a+b``; options go to one extractor as ``NAME.key=value``."""
    parts = [n.strip() for n in names.split("+") if n.strip()]
    if len(parts) < 2 or len(set(parts)) != len(parts):
        raise AttribError(f"--extractor {names!r}: join two or more different extractor names with '+', e.g. residual+clip")
    per: dict[str, list[str]] = {name: [] for name in parts}
    for key, value in parse_options(options).items():
        target, dot, option = key.partition(".")
        if not dot or target not in per:
            raise AttribError(
                f"--option {key}={value}: with fused extractors write NAME.{key}={value} with NAME one of {', '.join(parts)}"
            )
        per[target].append(f"{option}={value}")
    return [bind_extractor(name, per[name]) for name in parts]


def load_extractor(name: str | None = None, options: Sequence[str] = (),
                   gallery_extractors: Iterable[str] = ()) -> BoundExtractor | list[BoundExtractor]:
    """One bound extractor, or a list of them when ``name`` joins several with ``+`` (fusion).

    Without ``name``: the only one of ``gallery_extractors``, else :data:`DEFAULT_EXTRACTOR`.
    """
    if name and "+" in name:
        return bind_fused(name, options)
    return bind_extractor(name, options, gallery_extractors)
