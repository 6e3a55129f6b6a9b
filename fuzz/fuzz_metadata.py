"""Fuzz attrib's provenance readers on their text payloads: whatever a file's metadata says, `attrib
inspect --json` gives one line of strict JSON (RFC 8259: no NaN or Infinity, valid UTF-8) of bounded
size for it, and the same for the evidence and provenance an `identify --json` record carries.

    python fuzz/fuzz_metadata.py --runs 20000           # atheris (coverage-guided) when installed
    python fuzz/fuzz_metadata.py --runs 20000 --plain   # the seeded mutation loop, no atheris needed

Seeds are the texts image tools write, each in the containers that carry it: PNG tEXt / zTXt / iTXt
``parameters`` (AUTOMATIC1111, Fooocus), ``prompt`` / ``workflow`` (ComfyUI), ``invokeai_metadata``,
NovelAI's ``Software`` / ``Source`` / ``Comment``; EXIF UserComment (each character code), Software,
ImageDescription, MakerNote and ComfyUI's ``prompt:`` fields, in JPEG, WebP and a PNG eXIf chunk
before or after the pixels; XMP in PNG, JPEG and WebP. The plain loop mutates a JSON text as JSON
more often than not (values and keys made NaN, Infinity, lone surrogates printed as ``\\ud800``
escapes or raw, deep nesting, strings of hundreds of thousands of characters) and any text as text
(hostile tokens inserted, runs deleted, repeated, cut; random code points, invalid UTF-8; now and
then a field of hundreds of thousands of characters), wraps it in a container (sometimes mutating the file's bytes too) and runs it through
the CLI's own path (:func:`attrib.cli.evidence.inspect_record`, :func:`attrib.batch.records.json_text`).
Inputs that break the property are written to --crashes (default fuzz/crashes/) and counted; the
exit status is 1 when there is any. tests/test_fuzz.py runs a short loop.
"""

from __future__ import annotations

import importlib.util
import io
import json
import random
import struct
import tempfile
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAX_LINE_BYTES = 64_000  # one file's line, whatever its metadata holds
HOSTILE_TOKENS = ('"\\ud800"', '"\\udfff\\ud800"', "\\ud83d", "NaN", "Infinity", "-Infinity", "1e999", "-1e999",
                  "9" * 400, "[" * 200, "{" * 50, '"', "\\", "\x00", "\x1b[31m", "\u202e", "\ufeff", "\ud800",
                  "\udcff", "\n", "\r\n", "Steps: 1, Model: x\n", "prompt:", "workflow:", "Made with OpenAI DALL-E",
                  "OpenAI--00ff", "Midjourney", "flux1-dev", ".safetensors", "<", "&amp;", "]]>", "<!ENTITY x 'y'>")

A1111 = ("a castle on a hill\nNegative prompt: blurry\nSteps: 30, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1234, "
         'Size: 1024x1024, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Lora hashes: "d: 0123", Version: v1.10.1')
COMFY_PROMPT = json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 5, "cfg": 7.5, "model": ["4", 0]}},
                           "4": {"class_type": "CheckpointLoaderSimple",
                                 "inputs": {"ckpt_name": "z_image_turbo_bf16.safetensors"}}})
COMFY_WORKFLOW = json.dumps({"nodes": [{"id": 4, "type": "UNETLoader", "widgets_values": ["Chroma1-HD.safetensors"]}]})
XMP = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"'
       ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
       ' Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia">'
       '<xmp:CreatorTool>Adobe Firefly</xmp:CreatorTool><dc:description><rdf:Alt><rdf:li xml:lang="x-default">'
       'a cat --v 6.1</rdf:li></rdf:Alt></dc:description></rdf:Description></rdf:RDF></x:xmpmeta>')

# (channel, fields): png-text fields are PNG text chunks, exif fields EXIF tags, xmp the packet
SEEDS: tuple[tuple[str, dict[str, str]], ...] = (
    ("png-text", {"parameters": A1111}),
    ("png-text", {"prompt": COMFY_PROMPT, "workflow": COMFY_WORKFLOW}),
    ("png-text", {"invokeai_metadata": json.dumps({"model": {"name": "FLUX Schnell", "base": "flux"}, "seed": 3})}),
    ("png-text", {"sd-metadata": json.dumps({"model_weights": "stable-diffusion-1.5", "seed": 1.5})}),
    ("png-text", {"Software": "NovelAI", "Source": "NovelAI Diffusion V4.5 4BDE2A90", "Description": "1girl",
                  "Comment": json.dumps({"steps": 28, "sampler": "k_euler", "seed": 7})}),
    ("png-text", {"parameters": json.dumps({"Prompt": "a dog", "Base Model": "juggernautXL_v9.safetensors",
                                            "Seed": 1, "Version": "Fooocus v2.5.5"}), "fooocus_scheme": "fooocus"}),
    ("exif", {"UserComment": "Made with OpenAI DALL-E", "MakerNote": "OpenAI--0f1e2d3c4b5a6978"}),
    ("exif", {"Software": "Midjourney", "ImageDescription": "a cat, AI-generated", "Artist": "someone"}),
    ("exif", {"Model": "prompt:" + COMFY_PROMPT, "Make": "workflow:" + COMFY_WORKFLOW}),
    ("exif", {"UserComment": A1111}),
    ("xmp", {"packet": XMP}),
)
EXIF_TAGS = {"Software": (0x0131, 2), "Artist": (0x013B, 2), "ImageDescription": (0x010E, 2), "Make": (0x010F, 2),
             "Model": (0x0110, 2), "UserComment": (0x9286, 7), "MakerNote": (0x927C, 7)}
USER_COMMENT_CODES = ((b"ASCII\x00\x00\x00", "ascii"), (b"UNICODE\x00", "utf-16-be"), (b"UNICODE\x00", "utf-16-le"),
                      (b"\x00" * 8, "utf-8"), (b"", "utf-8"))


def _load_sibling(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def base_images() -> dict[str, bytes]:
    """A 16 px image in each container format (PNG, JPEG, WebP), without metadata."""
    import numpy as np
    from PIL import Image

    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    found = {}
    for fmt in ("PNG", "JPEG", "WEBP"):
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        found[fmt] = buffer.getvalue()
    return found


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_text_chunk(key: str, text: bytes, rng: random.Random) -> bytes:
    """``text`` under ``key`` in a tEXt, zTXt or iTXt chunk (iTXt compressed or not)."""
    name = key.encode("latin-1", "replace")[:79]
    kind = rng.choice((b"tEXt", b"zTXt", b"iTXt", b"iTXt"))
    if kind == b"tEXt":
        return png_chunk(kind, name + b"\x00" + text)
    if kind == b"zTXt":
        return png_chunk(kind, name + b"\x00\x00" + zlib.compress(text))
    compressed = rng.random() < 0.3
    body = zlib.compress(text) if compressed else text
    return png_chunk(kind, name + b"\x00" + bytes([compressed, 0]) + b"\x00\x00" + body)


def exif_block(entries: dict[str, bytes], rng: random.Random) -> bytes:
    """Big-endian TIFF data of EXIF ``entries`` (name -> raw value): UserComment and MakerNote in the
    Exif sub-IFD or, as DALL·E 2 writes them, in IFD0."""
    in_ifd0 = rng.random() < 0.5
    base = {n: v for n, v in entries.items() if in_ifd0 or EXIF_TAGS[n][1] == 2}
    sub = {n: v for n, v in entries.items() if n not in base}

    def ifd(fields: dict[str, bytes], at: int, pointer: bool) -> tuple[bytes, bytes]:
        rows = sorted((EXIF_TAGS[n][0], EXIF_TAGS[n][1], v) for n, v in fields.items())
        count = len(rows) + pointer
        data_at = at + 2 + 12 * count + 4
        table, data = struct.pack(">H", count), b""
        for tag, kind, value in rows:
            if len(value) <= 4:
                table += struct.pack(">HHI", tag, kind, len(value)) + value.ljust(4, b"\x00")
            else:
                table += struct.pack(">HHII", tag, kind, len(value), data_at + len(data))
                data += value + b"\x00" * (len(value) & 1)
        if pointer:
            table += struct.pack(">HHII", 0x8769, 4, 1, data_at + len(data))
        return table + b"\x00\x00\x00\x00", data

    table, data = ifd(base, 8, bool(sub))
    block = b"MM\x00*\x00\x00\x00\x08" + table + data
    if sub:
        sub_table, sub_data = ifd(sub, len(block), False)
        block += sub_table + sub_data
    return block


def encode_text(text: str, rng: random.Random) -> bytes:
    """UTF-8 (lone surrogates passed through: invalid UTF-8), or Latin-1 now and then."""
    if rng.random() < 0.15:
        return text.encode("latin-1", "replace")
    return text.encode("utf-8", "surrogatepass")


def exif_value(name: str, text: str, rng: random.Random) -> bytes:
    if name != "UserComment":
        return encode_text(text, rng)
    code, codec = rng.choice(USER_COMMENT_CODES)
    return code + text.encode(codec, "surrogatepass" if codec.startswith("utf") else "replace")


def container(channel: str, fields: dict[str, str], rng: random.Random, bases: dict[str, bytes]) -> bytes:
    """An image file carrying ``fields`` the way ``channel`` says, in a container drawn at random."""
    from PIL import Image

    png = bases["PNG"]
    if channel == "png-text":
        chunks = b"".join(png_text_chunk(k, encode_text(v, rng), rng) for k, v in fields.items())
        return png[:33] + chunks + png[33:]
    if channel == "exif":
        block = exif_block({n: exif_value(n, t, rng) for n, t in fields.items()}, rng)
        where = rng.choice(("png-before", "png-after", "JPEG", "WEBP"))
        if where == "png-before":
            return png[:33] + png_chunk(b"eXIf", block) + png[33:]
        if where == "png-after":
            return png[:-12] + png_chunk(b"eXIf", block) + png[-12:]
        params = {"exif": b"Exif\x00\x00" + block}
    else:
        packet = encode_text(fields["packet"], rng)
        where = rng.choice(("PNG", "JPEG", "WEBP"))
        if where == "PNG":
            return png[:33] + png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + packet) + png[33:]
        params = {"xmp": packet}
    if where == "JPEG" and len(next(iter(params.values()))) > 60_000:
        where = "WEBP"  # a JPEG segment holds at most 64 KiB
    buffer = io.BytesIO()
    Image.open(io.BytesIO(bases[where])).save(buffer, where, **params)
    return buffer.getvalue()


def hostile_value(rng: random.Random):
    """A JSON value a tool's reader may choke on, or pass on to the output."""
    return rng.choice((
        float("nan"), float("inf"), -float("inf"), 1e308, -0.0, 10 ** 300, None, True, "", "x\ud800",
        "\udfff\ud800", "\ud83d\ude00", "flux1-dev\ud800.safetensors", "z" * rng.randint(1, 300_000),
        "Chroma1-HD.safetensors", "../../etc/passwd", "C:\\m\\juggernautXL_v9.safetensors", "\x00\x1b[2J",
        [float("nan")] * 50, {"name": "\ud800", "base": float("inf")}, [[[[[[[[[[["deep"]]]]]]]]]]],
        {str(i): i for i in range(100)}))


def mutate_json(value, rng: random.Random):
    """``value`` (parsed JSON) with one to four of its values, or keys, made hostile."""
    for _ in range(rng.randint(1, 4)):
        holders, todo = [], [value]
        while todo and len(holders) < 2000:
            node = todo.pop()
            if isinstance(node, dict):
                holders += [(node, key) for key in node]
                todo += list(node.values())
            elif isinstance(node, list):
                holders += [(node, i) for i in range(len(node))]
                todo += node
        if not holders:
            return hostile_value(rng)
        node, key = rng.choice(holders)
        if isinstance(node, dict) and rng.random() < 0.2:
            node[rng.choice(("\ud800", "NaN", "", "ckpt_name", "model", "seed"))] = node.pop(key)
        else:
            node[key] = hostile_value(rng)
    return value


def mutate(text: str, rng: random.Random) -> str:
    """JSON (or ComfyUI's ``prompt:`` field) mutated as JSON values more often than not, printed
    with or without ASCII escapes (``\\ud800``); anything else, or the rest, as text."""
    prefix, _, body = text.partition(":") if text.startswith(("prompt:", "workflow:")) else ("", "", text)
    if rng.random() < 0.6:
        try:
            value = json.loads(body)
        except ValueError:
            value = None
        if value is not None:
            printed = json.dumps(mutate_json(value, rng), ensure_ascii=rng.random() < 0.7)
            return (prefix + ":" if prefix else "") + printed
    return mutate_text(text, rng)


def mutate_text(text: str, rng: random.Random) -> str:
    """One to six edits of ``text``: hostile tokens inserted or put in place of a run, runs deleted,
    repeated or truncated, random code points (lone surrogates included); rarely a huge field."""
    out = text
    for _ in range(rng.randint(1, 6)):
        pos = rng.randrange(len(out) + 1)
        edit = rng.randrange(9)
        if edit in (0, 1):
            out = out[:pos] + rng.choice(HOSTILE_TOKENS) + out[pos:]
        elif edit == 2:
            out = out[:pos] + rng.choice(HOSTILE_TOKENS) + out[pos + rng.randint(1, 12):]
        elif edit == 3:
            out = out[:pos] + out[pos + rng.randint(1, 64):]
        elif edit == 4:
            out = out[:pos] + out[pos:pos + rng.randint(1, 32)] * rng.randint(2, 16) + out[pos:]
        elif edit == 5:
            out = out[:pos] + "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randint(1, 8))) + out[pos:]
        elif edit == 6:
            out = out[:pos]
        elif edit == 7:  # a number JSON or Python reads in an odd way
            out = out.replace(rng.choice("0123456789"), rng.choice(("NaN", "1e999", "-0", "0x1F")), 1)
        elif rng.random() < 0.05:  # a field of hundreds of thousands of characters
            out = out[:pos] + out[pos:pos + 16].ljust(8, "x") * rng.randint(20_000, 40_000) + out[pos:]
    return out


def make_input(rng: random.Random, bases: dict[str, bytes], byte_mutate) -> bytes:
    """A seed with one field's text mutated, in a container; a fifth of them with the file's bytes mutated too."""
    channel, fields = rng.choice(SEEDS)
    fields = dict(fields)
    name = rng.choice(sorted(fields))
    fields[name] = mutate(fields[name], rng)
    data = container(channel, fields, rng, bases)
    if rng.random() < 0.2:
        data = byte_mutate(data, rng, [data])
    return data


class Checker:
    """The CLI's path for one file: read it as `attrib inspect` does and print its record as
    `emit_json` does (:func:`attrib.batch.records.json_text`); then the evidence and provenance of an
    `identify --json` record through the records writer. Each evidence item must be strict JSON
    by itself too (the writer's fallback must never be what saves a line)."""

    def __init__(self, folder: Path) -> None:
        from attrib.batch.records import RecordFormat, json_text
        from attrib.cli.evidence import inspect_record
        from attrib.evidence.combine import provenance
        from attrib.evidence.read import file_inspector

        self.path = folder / "input.img"
        self.inspect = file_inspector()
        self.record_of, self.json_text, self.provenance = inspect_record, json_text, provenance
        self.records = RecordFormat("jsonl", ("path",))

    def __call__(self, data: bytes) -> int:
        """The evidence items read (0 for a file that cannot be read); raises AssertionError (or
        whatever broke) when the property does not hold."""
        self.path.write_bytes(data)
        record, items = self.record_of(self.path, self.inspect)
        check_line(self.json_text(record))
        if items is None:
            return 0
        for item in items:  # the items themselves, before any writer's safety net: strict and encodable
            json.dumps(item.to_dict(), ensure_ascii=False, allow_nan=False).encode("utf-8")
        answer = {"path": record["path"], "evidence": record["evidence"],
                  "provenance": self.provenance(items, "unknown", None, ["sdxl", "dall-e-2", "mymix-v3"])}
        check_line(self.records.encode(answer).removesuffix("\n"))
        return len(items)


def _refuse_constant(token: str):
    raise ValueError(f"bare {token} is not JSON")


def check_line(line: str) -> None:
    """One line of strict JSON, valid UTF-8, of bounded size, holding a record with a path."""
    encoded = line.encode("utf-8")  # strict: a lone surrogate raises
    assert b"\n" not in encoded and b"\r" not in encoded, "not one line"
    assert len(encoded) <= MAX_LINE_BYTES, f"a line of {len(encoded):,} bytes"
    record = json.loads(line, parse_constant=_refuse_constant)
    assert isinstance(record, dict) and isinstance(record.get("path"), str), "not a record with a path"
    for item in record.get("evidence") or []:
        assert {"kind", "claim", "generator", "label", "ai_generated", "error", "known"} <= set(item), item


def run_plain(runs: int, seed: int, crashes: Path | None, seconds: float | None = None) -> dict:
    """The seeded mutation loop: {runs, evidence (inputs that gave evidence items), crashes, slowest_ms,
    seconds, kinds}."""
    import warnings

    images = _load_sibling("fuzz_images")
    byte_mutate = images.mutate
    bases = base_images()
    rng = random.Random(seed)
    stats = {"runs": 0, "evidence": 0, "crashes": 0, "slowest_ms": 0.0, "kinds": {}}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's "corrupt EXIF" and the like, as the CLI does
        check = Checker(Path(folder))
        for i in range(runs):
            if seconds is not None and time.perf_counter() - start > seconds:
                break
            data = make_input(rng, bases, byte_mutate)
            stats["runs"] += 1
            began = time.perf_counter()
            try:
                stats["evidence"] += check(data) > 0
            except Exception as exc:  # noqa: BLE001 -- this is what the fuzzer looks for
                images.record_crash(stats, exc, data, crashes and crashes / f"metadata-{seed}-{i}.bin")
            stats["slowest_ms"] = max(stats["slowest_ms"], round(1000 * (time.perf_counter() - began), 1))
    stats["seconds"] = round(time.perf_counter() - start, 1)
    return stats


def run_atheris(argv: list[str], runs: int) -> None:
    """libFuzzer's bytes: the first picks a seed's channel and field, the rest is that field's text."""
    import atheris

    with atheris.instrument_imports():
        import attrib.evidence.exif_xmp  # noqa: F401
        import attrib.evidence.item  # noqa: F401
        import attrib.evidence.parameters  # noqa: F401
    bases = base_images()
    folder = Path(tempfile.mkdtemp())
    check = Checker(folder)

    def one(data: bytes) -> None:
        if not data:
            return
        rng = random.Random(data[0])
        channel, fields = SEEDS[data[0] % len(SEEDS)]
        fields = dict(fields)
        fields[rng.choice(sorted(fields))] = data[1:].decode("utf-8", "surrogateescape")
        check(container(channel, fields, rng, bases))

    atheris.Setup([argv[0], f"-runs={runs}", "-rss_limit_mb=4096", "-timeout=30", *argv[1:]], one)
    atheris.Fuzz()


def main() -> None:
    _load_sibling("fuzz_images").command_line(__doc__.splitlines()[0], run_plain, run_atheris, 20_000)


if __name__ == "__main__":
    main()
