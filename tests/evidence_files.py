"""Image files carrying provenance metadata, built in memory for the evidence tests."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
from PIL import Image, PngImagePlugin

A1111 = ("a castle on a hill, oil painting\nNegative prompt: blurry\n"
         "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 1024x1024, "
         'Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Lora hashes: "detail: 0123456789ab", Version: v1.10.1')
COMFY_PROMPT = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 20, "model": ["4", 0]}},
    "4": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev.safetensors", "weight_dtype": "fp8"}},
    "5": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "4x_sd15_upscaler.pth"}},
}
COMFY_WORKFLOW = {"nodes": [{"id": 4, "type": "CheckpointLoaderSimple", "widgets_values": ["sd3.5_large.safetensors"]},
                            {"id": 5, "type": "KSampler", "widgets_values": [5, "fixed", 20]}]}
MIDJOURNEY_XMP = (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
                  b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                  b'<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
                  b' xmlns:dc="http://purl.org/dc/elements/1.1/"'
                  b' Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia">'
                  b'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">a cat --v 6.1 Job ID: 1234</rdf:li></rdf:Alt>'
                  b'</dc:description></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')
CAMERA_XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
              b'<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
              b' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">'
              b'<xmp:CreatorTool>Adobe Lightroom 7.0</xmp:CreatorTool>'
              b'<Iptc4xmpExt:DigitalSourceType>http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture'
              b'</Iptc4xmpExt:DigitalSourceType></rdf:Description></rdf:RDF></x:xmpmeta>')


def pixels(size: int = 96, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def encode(fmt: str, image: Image.Image | None = None, **params) -> bytes:
    buffer = io.BytesIO()
    (image or pixels()).save(buffer, fmt, **params)
    return buffer.getvalue()


def png_with_text(**texts: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    return encode("PNG", pnginfo=info)


def png_with_xmp(xmp: bytes) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8"))
    return encode("PNG", pnginfo=info)


def exif(base: dict | None = None, sub: dict | None = None) -> bytes:
    table = Image.Exif()
    for tag, value in (base or {}).items():
        table[tag] = value
    for tag, value in (sub or {}).items():
        table.get_ifd(0x8769)[tag] = value
    return table.tobytes()


def user_comment(text: str, code: bytes = b"UNICODE\x00", codec: str = "utf-16-be") -> bytes:
    return code + text.encode(codec)


def comfy_png(prompt=COMFY_PROMPT, workflow=COMFY_WORKFLOW) -> bytes:
    return png_with_text(prompt=json.dumps(prompt), workflow=json.dumps(workflow))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_with_chunk_after_pixels(kind: bytes, body: bytes) -> bytes:
    """A PNG with one more chunk after its pixel data, right before IEND (the last 12 bytes)."""
    png = encode("PNG")
    return png[:-12] + png_chunk(kind, body) + png[-12:]


def dall_e_2_exif(typed_text: bool = False) -> bytes:
    """EXIF as DALL·E 2's PNGs carry it: UserComment and MakerNote in IFD0 (no Exif sub-IFD).
    ``typed_text``: written with the ASCII type (read back as str), else as UNDEFINED bytes."""
    comment, note = b"ASCII\x00\x00\x00Made with OpenAI DALL-E", b"OpenAI--0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    if typed_text:
        comment, note = comment.decode("ascii"), note.decode("ascii")
    return exif({0x9286: comment, 0x927C: note})


LONE = "\\ud800"  # a JSON escape that decodes to a lone surrogate, which UTF-8 cannot carry
MEGABYTE = 1_000_000


def hostile_text_files() -> dict[str, bytes]:
    """Files whose provenance text is hostile: lone surrogates, NaN and Infinity in the JSON of
    InvokeAI, ComfyUI, NovelAI, Fooocus and a WebP EXIF ``prompt:`` field; megabyte EXIF and XMP
    fields. Each must still give one strict JSON line."""
    comfy = ('{"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x' + LONE + '.safetensors", '
             '"seed": NaN, "cfg": Infinity, "denoise": -Infinity}}}')
    long_xmp = MIDJOURNEY_XMP.replace(b"a cat --v 6.1 Job ID: 1234", b"a cat " * (MEGABYTE // 6))
    return {
        "InvokeAI surrogate and NaN": png_with_text(invokeai_metadata='{"model": {"name": "m' + LONE + '", "base": "'
                                                    + LONE + '"}, "seed": NaN, "steps": Infinity}'),
        "ComfyUI surrogate and NaN": png_with_text(prompt=comfy, workflow='{"nodes": [], "x": "' + LONE + '"}'),
        "NovelAI surrogate and NaN": png_with_text(Software="NovelAI", Source="NovelAI Diffusion " + LONE,
                                                   Comment='{"seed": NaN, "sampler": "' + LONE + '", "steps": 1e999}'),
        "Fooocus surrogate and NaN": png_with_text(parameters='{"Base Model": "b' + LONE + '.safetensors", '
                                                   '"Seed": -Infinity, "Version": "Fooocus ' + LONE + '"}',
                                                   fooocus_scheme="fooocus"),
        "WebP EXIF prompt surrogate and NaN": encode("WEBP", exif=exif({0x0110: "prompt:" + comfy}), lossless=True),
        "WebP EXIF Software of a megabyte": encode("WEBP", exif=exif({0x0131: "Midjourney " + "x" * MEGABYTE}),
                                                   lossless=True),
        "PNG eXIf UserComment of a megabyte": encode("PNG", exif=exif({0x9286: b"ASCII\x00\x00\x00" + b"y" * MEGABYTE})),
        "XMP description of a megabyte": png_with_xmp(long_xmp),
    }
