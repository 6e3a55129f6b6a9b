"""attrib: tell which generator made an image, or say it is unknown.

The public Python API (everything the CLI uses)::

    import attrib

    gallery = attrib.open_gallery("my-gallery")           # a folder (created when missing)
    extractor = attrib.load_extractor("residual")          # or "residual+effnet", options=["k=v"]
    gallery.enroll("sdxl", ["a.png", "b.png"], extractor, family="stable-diffusion")
    for result in gallery.identify(["query.png"], extractor):
        print(result.decision, result.score, result.threshold)
    gallery.verify("sdxl", ["query.png"], extractor)
    gallery.calibrate(target_far=0.01)

Names are imported lazily, so ``import attrib`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .host.hookspecs import hookimpl
from .version import __version__

_LAZY = {
    "open_gallery": "attrib.gallery",
    "Gallery": "attrib.gallery",
    "EnrollReport": "attrib.enrollment",
    "GeneratorInfo": "attrib.gallery",
    "ReembedReport": "attrib.enrollment",
    "load_extractor": "attrib.extractors.resolve",
    "BoundExtractor": "attrib.extractors.contract",
    "IdentificationResult": "attrib.scoring.decision",
    "Verification": "attrib.scoring.decision",
    "CalibrationResult": "attrib.scoring.calibration",
    "DEFAULT_TARGET_FAR": "attrib.scoring.calibration",
}

__all__ = ["__version__", "hookimpl", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from .extractors.contract import BoundExtractor
    from .extractors.resolve import load_extractor
    from .enrollment import EnrollReport, ReembedReport
    from .gallery import Gallery, GeneratorInfo, open_gallery
    from .scoring import DEFAULT_TARGET_FAR
    from .scoring.calibration import CalibrationResult
    from .scoring.decision import IdentificationResult, Verification


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'attrib' has no attribute {name!r}")
