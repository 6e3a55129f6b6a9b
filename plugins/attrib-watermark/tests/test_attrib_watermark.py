import io

import numpy as np
import pytest

pytest.importorskip("imwatermark")

from imwatermark import WatermarkEncoder  # noqa: E402
from PIL import Image  # noqa: E402

from attrib.evidence import read_evidence  # noqa: E402
from attrib.testing import check_evidence_reader  # noqa: E402
from attrib_watermark import KNOWN, InvisibleWatermarkReader, decode_bits  # noqa: E402


def textured(size=512, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.stack([xx / 3, yy / 3, (xx + yy) / 5], -1) % 256 + rng.normal(0, 10, (size, size, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


def png(rgb):
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG")
    return buffer.getvalue()


def marked(payload):
    encoder = WatermarkEncoder()
    if payload.kind == "bits":
        encoder.set_watermark("bits", list(payload.bits))
    else:
        encoder.set_watermark("bytes", bytes(int("".join(map(str, payload.bits[i:i + 8])), 2)
                                             for i in range(0, len(payload.bits), 8)))
    bgr = encoder.encode(np.ascontiguousarray(textured()[:, :, ::-1]), "dwtDct")
    return png(np.ascontiguousarray(bgr[:, :, ::-1]))


@pytest.mark.parametrize("payload", KNOWN, ids=[p.name for p in KNOWN])
def test_known_watermarks_are_found(payload):
    items = read_evidence(data=marked(payload), readers=[InvisibleWatermarkReader()])
    assert [(e.kind, e.detail["payload"], e.ai_generated) for e in items] == [("watermark", payload.name, True)]
    assert items[0].generator == ("sdxl" if payload.name == "sdxl" else None)


def test_unmarked_images_give_nothing():
    for seed in range(3):
        assert read_evidence(data=png(textured(seed=seed)), readers=[InvisibleWatermarkReader()]) == []


def test_conformance():
    print(check_evidence_reader(InvisibleWatermarkReader, examples={"sdxl": marked(KNOWN[0])}))


def test_reading_a_watermark_never_imports_torch(tmp_path):
    import subprocess
    import sys

    (tmp_path / "q.png").write_bytes(png(textured(256)))
    probe = ("import sys; from attrib_watermark import InvisibleWatermarkReader as R; "
             "from attrib.evidence import read_evidence; "
             f"read_evidence({str(tmp_path / 'q.png')!r}, readers=[R()]); "
             "print('torch' in sys.modules, 'cv2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]  # the decoder ran (OpenCV) without invisible-watermark's torch method


def test_images_over_the_pixel_cap_are_not_examined(monkeypatch):
    import attrib_watermark

    data = marked(KNOWN[0])
    assert read_evidence(data=data, readers=[InvisibleWatermarkReader()])  # 512 px: found
    monkeypatch.setattr(attrib_watermark, "MAX_PIXELS", 511 * 511)
    assert read_evidence(data=data, readers=[InvisibleWatermarkReader()]) == []


@pytest.mark.parametrize("size", [(256, 256), (512, 384), (301, 517)])
def test_decoder_reads_the_bits_invisible_watermark_reads(size):
    from imwatermark.maxDct import EmbedMaxDct

    rng = np.random.default_rng(size[0])
    images = [rng.integers(0, 256, (*size, 3), dtype=np.uint8), textured(max(size))[: size[0], : size[1]]]
    encoder = WatermarkEncoder()
    encoder.set_watermark("bits", list(KNOWN[0].bits))
    images.append(encoder.encode(np.ascontiguousarray(images[1]), "dwtDct"))
    for bgr in images:
        bgr = np.ascontiguousarray(bgr)
        for payload in KNOWN:
            expected = EmbedMaxDct(watermarks=[], wmLen=len(payload.bits)).decode(bgr)
            assert decode_bits(bgr, payload) == [int(b) for b in expected]
