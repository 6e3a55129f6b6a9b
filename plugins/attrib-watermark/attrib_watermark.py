"""Evidence reader for the invisible watermarks that Stable Diffusion's reference code embeds
(DWT-DCT, through ``invisible-watermark``, which brings OpenCV): SDXL's 48-bit message (also
embedded by diffusers' SDXL pipelines), ``StableDiffusionV1`` (the v1 scripts) and ``SDV2``
(the v2 scripts). The decoder computes what invisible-watermark's DWT-DCT method reads (one score per
4x4 block of the Haar approximation of the U channel, averaged per bit) with whole-array operations,
once for the three payloads; images over :data:`MAX_PIXELS` (larger than any reference output) are not
examined.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

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


BLOCK = 4  # invisible-watermark's DWT-DCT block side
SCALES = (0, 36, 36)  # its quantisation step per YUV channel (0: the channel carries no mark)


@functools.cache
def _codecs():
    """OpenCV and PyWavelets, which invisible-watermark brings (its package itself is never imported:
    its ``__init__`` imports the RivaGAN method, and with it torch, for a decoder this reader never uses)."""
    try:
        import cv2
        import pywt
    except ImportError:
        raise EvidenceError("invisible-watermark is not installed (pip install invisible-watermark)") from None
    return cv2, pywt


def block_scores(bgr: np.ndarray) -> list[np.ndarray]:
    """Per marked channel, one 0/1 score per 4x4 block of the first-level Haar approximation, in the order
    the DWT-DCT method visits the blocks (row by row): whether the block's largest non-DC coefficient sits
    in the upper half of its quantisation step."""
    cv2, pywt = _codecs()
    rows, cols = bgr.shape[0] // 4 * 4, bgr.shape[1] // 4 * 4
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)
    scores = []
    for channel in range(2):  # the method reads Y and U only
        scale = SCALES[channel]
        if scale <= 0:
            continue
        approx, _ = pywt.dwt2(yuv[:rows, :cols, channel], "haar")
        down, across = approx.shape[0] // BLOCK, approx.shape[1] // BLOCK
        blocks = (approx[:down * BLOCK, :across * BLOCK].reshape(down, BLOCK, across, BLOCK)
                  .swapaxes(1, 2).reshape(-1, BLOCK * BLOCK))
        strongest = np.argmax(np.abs(blocks[:, 1:]), axis=1) + 1
        values = np.abs(blocks[np.arange(len(blocks)), strongest])
        scores.append(np.mod(values, scale) > 0.5 * scale)
    return scores


def bits_from_scores(scores: list[np.ndarray], length: int) -> list[int]:
    """A ``length``-bit message from block scores: block n of each channel votes for bit n mod ``length``."""
    votes, counts = np.zeros(length), np.zeros(length)
    for channel in scores:
        bit = np.arange(len(channel)) % length
        votes += np.bincount(bit, weights=channel, minlength=length)
        counts += np.bincount(bit, minlength=length)
    mean = np.divide(votes, counts, out=np.zeros(length), where=counts > 0)
    return [int(b) for b in mean * 255 > 127]


def decode_bits(bgr: np.ndarray, payload: Payload) -> list[int]:
    """The payload's length of bits as the DWT-DCT method reads them (what invisible-watermark's
    ``WatermarkDecoder(...).decode(bgr, "dwtDct")`` computes before packing them)."""
    return bits_from_scores(block_scores(bgr), len(payload.bits))


class InvisibleWatermarkReader:
    """Stable Diffusion reference invisible watermarks (DWT-DCT), via invisible-watermark."""

    name = "invisible-watermark"
    kind = "watermark"

    def read(self, source) -> list[Evidence]:
        width, height = source.image.size
        if min(width, height) < MIN_SIDE or width * height > MAX_PIXELS:
            return []
        scores = block_scores(_bgr(source))
        for payload in KNOWN:
            bits = bits_from_scores(scores, len(payload.bits))
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
