"""Evidence reader for the invisible watermarks that Stable Diffusion's reference code embeds
(DWT-DCT, through ``invisible-watermark``, which brings OpenCV): SDXL's 48-bit message (also
embedded by diffusers' SDXL pipelines), ``StableDiffusionV1`` (the v1 scripts) and ``SDV2``
(the v2 scripts). The DWT-DCT decoder runs in Python over every 4x4 block, three times (one per
payload): about 0.16 s for a 512 px image and 0.6 s for a 1024 px one on one core, so images over
:data:`MAX_PIXELS` (larger than any reference output) are not examined.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attrib import hookimpl
from attrib.errors import EvidenceError
from attrib.evidence import Evidence

MIN_SIDE = 256  # DWT-DCT reads 4x4 blocks of the second DWT level: smaller images carry too few
MAX_PIXELS = 2048 * 2048  # larger images are not examined: the decoder's cost grows with the pixels
MAX_WRONG_BITS = 0.1  # share of decoded bits that may differ from a known payload (chance: 0.5)


@dataclass(frozen=True)
class Payload:
    name: str
    kind: str  # how the payload is written: "bits" or "bytes" (of text)
    bits: tuple[int, ...]
    claim: str


def _bytes_payload(name: str, text: str, claim: str) -> Payload:
    bits = tuple(int(b) for byte in text.encode() for b in f"{byte:08b}")
    return Payload(name, "bytes", bits, claim)


KNOWN = (
    Payload("sdxl", "bits", tuple(int(b) for b in "101100111110110010010000011110111011000110011110"),
            "SDXL reference watermark (Stability's sgm code, diffusers' SDXL pipelines)"),
    _bytes_payload("StableDiffusionV1", "StableDiffusionV1", "Stable Diffusion v1 reference scripts watermark"),
    _bytes_payload("SDV2", "SDV2", "Stable Diffusion v2 reference scripts watermark"),
)


def _bgr(source) -> np.ndarray:
    try:
        rgb = np.asarray(source.image.convert("RGB"))
    except Exception as exc:  # noqa: BLE001 - a damaged file is one line
        raise EvidenceError(f"pixels cannot be decoded for the watermark: {str(exc) or type(exc).__name__}") from None
    return np.ascontiguousarray(rgb[:, :, ::-1])


@functools.cache
def _max_dct():
    """invisible-watermark's DWT-DCT module alone: its package ``__init__`` also imports the RivaGAN
    method, which imports torch (seconds per process) for a decoder this reader never uses."""
    spec = importlib.util.find_spec("imwatermark")  # finds the package without importing it
    if spec is None or spec.origin is None:
        raise EvidenceError("invisible-watermark is not installed (pip install invisible-watermark)")
    location = Path(spec.origin).with_name("maxDct.py")
    module_spec = importlib.util.spec_from_file_location("attrib_watermark._imwatermark_maxdct", location)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def decode_bits(bgr: np.ndarray, payload: Payload) -> list[int]:
    """The payload's length of bits as the DWT-DCT method reads them (what invisible-watermark's
    ``WatermarkDecoder(...).decode(bgr, "dwtDct")`` computes before packing them)."""
    return [int(b) for b in _max_dct().EmbedMaxDct(watermarks=[], wmLen=len(payload.bits)).decode(bgr)]


class InvisibleWatermarkReader:
    """Stable Diffusion reference invisible watermarks (DWT-DCT), via invisible-watermark."""

    name = "invisible-watermark"
    kind = "watermark"

    def read(self, source) -> list[Evidence]:
        width, height = source.image.size
        if min(width, height) < MIN_SIDE or width * height > MAX_PIXELS:
            return []
        bgr = _bgr(source)
        for payload in KNOWN:
            bits = decode_bits(bgr, payload)
            wrong = sum(a != b for a, b in zip(bits, payload.bits)) / len(payload.bits)
            if wrong <= MAX_WRONG_BITS:
                rule = source.names.match(payload.claim, self.kind)
                return [Evidence(kind=self.kind, claim=payload.claim, generator=rule and rule.generator,
                                 label=rule and rule.label, ai_generated=True,
                                 detail={"payload": payload.name, "bits": "".join(map(str, bits)),
                                         "wrong_bits": round(wrong, 3), "method": "dwtDct"})]
        return []


@hookimpl
def register_evidence(register):
    register(InvisibleWatermarkReader)
