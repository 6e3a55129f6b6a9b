"""Conformance kit for extractor and evidence-reader plugins: call it from your plugin's tests.

    from attrib.testing import check_evidence_reader, check_extractor

    def test_conformance():
        print(check_extractor(MyExtractor, options={"model": "small"}))
        print(check_evidence_reader(MyReader, examples={"marked": marked_png_bytes}))

Every check runs the plugin the way the host does (extractors through
:class:`attrib.extractors.contract.BoundExtractor`) and raises ``AssertionError`` naming
the plugin and the failing check. Only numpy is imported at module level; the evidence checks
import Pillow and :mod:`attrib.evidence` when called.
"""

from __future__ import annotations

import functools
import json
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np

from .errors import ExtractorError
from .extractors.contract import BoundExtractor, normalised_embeddings
from .host.manager import ExtractorSpec

__all__ = ["CheckReport", "EvidenceCheckReport", "check_evidence_reader", "check_extractor", "hostile_files",
           "sample_images", "stripped_files"]


@dataclass
class CheckReport:
    """What :func:`check_extractor` verified; ``str(report)`` is a readable summary."""

    name: str
    version: str
    plugin: str
    dim: int
    checks: list[tuple[str, str]] = field(default_factory=list)
    images_per_second: float | None = None

    def __str__(self) -> str:
        lines = [f"extractor {self.name}@{self.version} (plugin {self.plugin}), dim {self.dim}"]
        lines += [f"  ok  {check}: {detail}" for check, detail in self.checks]
        if self.images_per_second is not None:
            lines.append(f"  speed: {self.images_per_second:.1f} images/s on 256x256 images")
        return "\n".join(lines)


def sample_images(seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic HxWx3 uint8 RGB test images of awkward sizes and kinds (fresh copies)."""
    return {key: im.copy() for key, im in _sample_images(seed).items()}


@functools.lru_cache(maxsize=2)
def _sample_images(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def textured(h: int, w: int) -> np.ndarray:
        yy, xx = np.ogrid[0:h, 0:w]
        base = np.empty((h, w, 3), np.float32)
        base[..., 0], base[..., 1], base[..., 2] = xx / w * 160, yy / h * 160, (xx + yy) / (h + w) * 160
        base += rng.standard_normal((h, w, 3), dtype=np.float32) * 30
        return np.clip(base, 0, 255).astype(np.uint8)

    gray = textured(96, 80).mean(axis=2).astype(np.uint8)
    rgba = np.concatenate([textured(90, 120), rng.integers(0, 256, (90, 120, 1), dtype=np.uint8)], -1)
    alpha = rgba[..., 3:].astype(np.float32) / 255.0
    composited = rgba[..., :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)  # over white
    return {
        "256x256 a": textured(256, 256),
        "256x256 b": textured(256, 256),
        "tiny 64x64": textured(64, 64),
        "large 2048x1536": textured(1536, 2048),
        "grayscale as RGB": np.repeat(gray[..., None], 3, axis=2),
        "alpha composited": np.round(composited).astype(np.uint8),
        "odd 67x131": textured(131, 67),
    }


class _NetworkUsed(OSError):
    pass


@contextmanager
def _no_network(attempts: list[str]):
    """Make inet connections fail (and record them) inside the block."""
    saved = (socket.socket.connect, socket.socket.connect_ex, socket.create_connection)

    def refuse(what):
        def _refuse(*args, **kwargs):
            sock = args[0] if args and isinstance(args[0], socket.socket) else None
            if sock is not None and sock.family not in (socket.AF_INET, socket.AF_INET6):
                return saved[0 if what == "connect" else 1](*args, **kwargs)
            target = args[1] if sock is not None and len(args) > 1 else (args[0] if args else "?")
            attempts.append(f"{what}({target!r})")
            raise _NetworkUsed(f"attrib.testing: network access is not allowed ({what} {target!r})")

        return _refuse

    # the socket methods are patched on purpose, for the block only
    socket.socket.connect = refuse("connect")  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse("connect_ex")  # type: ignore[method-assign]
    socket.create_connection = refuse("create_connection")
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.create_connection = saved  # type: ignore[method-assign]


class _Instance:
    """Factory that hands out an already-built extractor (for instances given to the kit)."""

    def __init__(self, impl: Any):
        self.impl = impl
        cls = type(impl)
        self.name = getattr(cls, "name", getattr(impl, "name", None))
        self.version = getattr(cls, "version", getattr(impl, "version", None))
        self.dim = getattr(impl, "dim", None)
        self.__doc__ = cls.__doc__

    def __call__(self, **options):
        return self.impl


def check_extractor(
    extractor_or_class: Any,
    *,
    options: dict[str, str] | None = None,
    speed: bool = True,
    atol: float = 1e-4,
) -> CheckReport:
    """Run the conformance checks; return a report or raise AssertionError naming the failure.

    ``extractor_or_class`` is an extractor class (built here with ``options``, as
    ``attrib --extractor NAME --option k=v`` would) or an already-built instance.
    ``atol`` bounds the difference between L2-normalised embeddings that must agree.
    """
    x = extractor_or_class  # a class, a factory callable carrying the class attributes, or an instance
    is_class = isinstance(x, type) or (callable(x) and not hasattr(x, "embed_batch"))
    cls = extractor_or_class if is_class else type(extractor_or_class)
    label = repr(getattr(cls, "name", cls.__name__))
    plugin = cls.__module__

    def fail(check: str, detail: str) -> NoReturn:
        raise AssertionError(f"extractor {label} (plugin {plugin}) failed check '{check}': {detail}")

    checks: list[tuple[str, str]] = []

    # 1. class attributes readable without building anything
    for attr in ("name", "version"):
        value = getattr(cls, attr, None)
        if not isinstance(value, str) or not value.strip():
            fail("class attributes", f"{cls.__name__}.{attr} must be a non-empty str on the class, got {value!r}")
    class_dim = getattr(cls, "dim", None)
    if class_dim is not None and (not isinstance(class_dim, (int, np.integer)) or class_dim <= 0):
        fail("class attributes", f"{cls.__name__}.dim must be None or a positive int, got {class_dim!r}")
    if isinstance(cls, type) and not callable(getattr(cls, "embed_batch", None)):
        fail("class attributes", f"{cls.__name__} has no embed_batch method")
    checks.append(("class attributes", f"name={cls.name!r} version={cls.version!r} dim={class_dim!r}"))

    # 2. build it as the host does, with the network off
    attempts: list[str] = []
    factory = extractor_or_class if is_class else _Instance(extractor_or_class)
    if not is_class and options:
        raise TypeError("options only apply when check_extractor is given a class")

    def build() -> BoundExtractor:
        try:
            with _no_network(attempts):
                bound = BoundExtractor(ExtractorSpec(factory=factory, plugin=plugin), options)
        except ExtractorError as exc:
            if attempts:
                fail("no network", f"tried to reach the network while starting: {attempts} ({exc})")
            fail("construction", str(exc))
        if attempts:
            fail("no network", f"tried to reach the network while starting: {attempts}")
        return bound

    bound = build()
    dim = bound.dim
    if class_dim is not None and class_dim != dim:
        fail("class attributes", f"class dim {class_dim} differs from instance dim {dim}")
    checks.append(("construction", f"identity {bound.identity.key}"))

    def embed(images: list[np.ndarray], check: str, target: BoundExtractor | None = None) -> np.ndarray:
        target = target or bound
        copies = [im.copy() for im in images]
        try:
            with _no_network(attempts):
                raw = target.impl.embed_batch(list(images))
        except Exception as exc:  # noqa: BLE001 - reported with the check's name
            if attempts:
                fail("no network", f"tried to reach the network while embedding: {attempts} ({exc})")
            fail(check, f"embed_batch raised {type(exc).__name__}: {exc}")
        if attempts:
            fail("no network", f"tried to reach the network while embedding: {attempts}")
        if any(not np.array_equal(a, b) for a, b in zip(images, copies)):
            fail(check, "embed_batch modified its input images in place")
        try:
            return normalised_embeddings(raw, len(images), dim)
        except ExtractorError as exc:
            fail(check, str(exc))

    images = sample_images()
    names = list(images)
    batch = [images[k] for k in names]

    # 3. shape/dtype/finite on a mixed batch of awkward images
    together = embed(batch, "output")
    checks.append(("output", f"({len(batch)}, {dim}) float, finite, non-zero for {', '.join(names)}"))

    # 4. determinism: same call twice, and a second instance built the same way
    again = embed(batch, "determinism")
    diff = float(np.abs(together - again).max())
    if diff > atol:
        fail("determinism", f"embedding the same images twice differs by {diff:.3g} (> {atol})")
    if is_class:
        other = build()
        diff2 = float(np.abs(together - embed(batch, "determinism", other)).max())
        del other
        if diff2 > atol:
            fail("determinism", f"two instances built with the same options differ by {diff2:.3g} (> {atol})")
        checks.append(("determinism", f"max diff {max(diff, diff2):.2g} (two calls, two instances)"))
    else:
        checks.append(("determinism", f"max diff {diff:.2g} (two calls)"))

    # 5. batch vs single, and odd images one at a time
    worst, worst_name = 0.0, ""
    for i, key in enumerate(names):
        alone = embed([images[key]], f"single image: {key}")[0]
        d = float(np.abs(alone - together[i]).max())
        if d > worst:
            worst, worst_name = d, key
    if worst > atol:
        fail("batch vs single", f"image {worst_name!r} embeds differently alone than in a batch (max diff {worst:.3g} > {atol})")
    checks.append(("batch vs single", f"max diff {worst:.2g} over {len(names)} images"))
    if np.allclose(together, together[0], atol=1e-6):
        fail("distinguishes images", "every image got the same embedding")
    checks.append(("odd images", "tiny, large, grayscale, alpha-composited and odd-sized all embed"))
    checks.append(("no network", "no connection attempted while building or embedding"))

    # 6. speed on 256x256 images
    ips = None
    if speed:
        rng = np.random.default_rng(1)
        speed_batch = [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(8)]
        embed(speed_batch[:2], "speed")  # warm-up
        done, start = 0, time.perf_counter()
        while done < 64 and (done == 0 or time.perf_counter() - start < 1.0):
            embed(speed_batch, "speed")
            done += len(speed_batch)
        ips = done / max(time.perf_counter() - start, 1e-9)
    return CheckReport(bound.name, bound.version, plugin, dim, checks, ips)


# ---------------------------------------------------------------- evidence readers


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _with_png_chunk(png: bytes, kind: bytes, body: bytes) -> bytes:
    """``png`` with one more chunk right after IHDR (8-byte signature + 25-byte IHDR chunk)."""
    return png[:33] + _png_chunk(kind, body) + png[33:]


def _encoded(fmt: str, size: int = 128, **params: Any) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(sample_images()["256x256 a"][:size, :size]).save(buffer, fmt, **params)
    return buffer.getvalue()


def stripped_files() -> dict[str, bytes]:
    """Image files of every common format with no metadata at all: no reader may claim anything."""
    return {f"stripped {fmt}": _encoded(fmt) for fmt in ("PNG", "JPEG", "WEBP", "GIF", "TIFF", "BMP")}


_ENTITY_BOMB = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
                + b"".join(b'<!ENTITY %s "%s">' % (bytes([98 + i]), (b"&" + bytes([97 + i]) + b";") * 10)
                           for i in range(8))
                + b']><x:xmpmeta xmlns:x="adobe:ns:meta/">&i;</x:xmpmeta>')


def hostile_files() -> dict[str, bytes]:
    """Damaged and hostile files a reader must survive: it returns items (possibly with ``error``)
    or raises :class:`attrib.errors.EvidenceError`, never anything else, and never hangs."""
    png = _encoded("PNG", 64)
    itxt = b"XML:com.adobe.xmp\x00\x00\x00\x00\x00"
    return {
        "empty file": b"",
        "random bytes": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "truncated PNG": png[: len(png) // 2],
        "PNG text chunk of 3 MB": _with_png_chunk(png, b"tEXt", b"parameters\x00" + b"Steps: 1, " * 300_000),
        "PNG text not UTF-8": _with_png_chunk(png, b"iTXt", b"parameters\x00\x00\x00\x00\x00\xff\xfe\xfa"),
        "ComfyUI prompt that is not JSON": _with_png_chunk(png, b"tEXt", b"prompt\x00{not json"),
        "deeply nested JSON": _with_png_chunk(png, b"tEXt", b"workflow\x00" + b"[" * 100_000),
        "XMP entity expansion": _with_png_chunk(png, b"iTXt", itxt + _ENTITY_BOMB),
        "XMP not XML": _with_png_chunk(png, b"iTXt", itxt + b"<x:xmpmeta <<<"),
        "C2PA store of garbage": _with_png_chunk(png, b"caBX", b"\x00\x00\x00\x20jumb" + b"c2pa" * 64),
        "C2PA store truncated": _with_png_chunk(png, b"caBX", b"\x00\x00\x10\x00jumb\x00\x00\x00\x1ejumdc2pa"),
    }


@dataclass
class EvidenceCheckReport:
    """What :func:`check_evidence_reader` verified; ``str(report)`` is a readable summary."""

    name: str
    plugin: str
    checks: list[tuple[str, str]] = field(default_factory=list)
    ms_per_file: float | None = None

    def __str__(self) -> str:
        lines = [f"evidence reader {self.name} (plugin {self.plugin})"]
        lines += [f"  ok  {check}: {detail}" for check, detail in self.checks]
        if self.ms_per_file is not None:
            lines.append(f"  speed: {self.ms_per_file:.2f} ms per file without metadata (256 px PNG)")
        return "\n".join(lines)


def check_evidence_reader(reader_or_class: Any, *, examples: dict[str, bytes] | None = None,
                          speed: bool = True) -> EvidenceCheckReport:
    """Run the evidence-reader conformance checks; return a report or raise AssertionError.

    ``reader_or_class`` is a reader class (built with no arguments, as the host does) or an
    instance. ``examples`` maps a label to file bytes the reader must find evidence in.
    """
    from .errors import EvidenceError
    from .evidence import Evidence, EvidenceSource, names_for

    is_class = isinstance(reader_or_class, type)
    cls = reader_or_class if is_class else type(reader_or_class)
    label = repr(getattr(cls, "name", cls.__name__))
    plugin = cls.__module__

    def fail(check: str, detail: str) -> NoReturn:
        raise AssertionError(f"evidence reader {label} (plugin {plugin}) failed check '{check}': {detail}")

    checks: list[tuple[str, str]] = []
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.strip():
        fail("class attributes", f"{cls.__name__}.name must be a non-empty str on the class, got {name!r}")
    if not callable(getattr(cls, "read", None)):
        fail("class attributes", f"{cls.__name__} has no read(source) method")
    attempts: list[str] = []
    try:
        with _no_network(attempts):
            reader = reader_or_class() if is_class else reader_or_class
    except Exception as exc:  # noqa: BLE001 - reported with the check's name
        fail("construction", f"{cls.__name__}() raised {type(exc).__name__}: {exc}")
    try:
        names = names_for([reader])
    except EvidenceError as exc:
        fail("generator_names", str(exc))
    checks.append(("class attributes", f"name={name!r}, built with no arguments"))

    def read(data: bytes, check: str) -> list:
        source = EvidenceSource(data=data, names_factory=lambda: names)
        try:
            with _no_network(attempts):
                found = reader.read(source)
        except EvidenceError:
            found = []
        except Exception as exc:  # noqa: BLE001
            fail(check, f"read raised {type(exc).__name__}: {exc} (raise attrib.errors.EvidenceError, or return "
                        "an Evidence with error set)")
        if attempts:
            fail("no network", f"tried to reach the network: {attempts}")
        if not isinstance(found, list) or not all(isinstance(e, Evidence) for e in found):
            fail(check, f"read must return a list of attrib.evidence.Evidence, got {type(found).__name__}")
        for item in found:
            try:
                json.dumps(item.to_dict())
            except (TypeError, ValueError) as exc:
                fail(check, f"an item's to_dict() is not JSON-serialisable: {exc}")
        return found

    for key, data in stripped_files().items():
        claims = [e for e in read(data, f"stripped file: {key}") if e.names_something]
        if claims:
            fail("stripped files claim nothing", f"{key} gave {claims[0].to_dict()}")
    checks.append(("stripped files claim nothing", ", ".join(stripped_files())))
    for key, data in hostile_files().items():
        read(data, f"hostile file: {key}")
    checks.append(("hostile files", f"{len(hostile_files())} damaged or hostile files, no exception"))
    for key, data in (examples or {}).items():
        found = read(data, f"example: {key}")
        if not [e for e in found if e.error is None]:
            fail("examples", f"{key!r} gave no evidence: {[e.to_dict() for e in found]}")
        again = read(data, f"example: {key}")
        if [e.to_dict() for e in again] != [e.to_dict() for e in found]:
            fail("determinism", f"{key!r} gave different evidence on a second read")
    if examples:
        checks.append(("examples", f"{len(examples)} found, the same on a second read"))
    checks.append(("no network", "no connection attempted while building or reading"))
    ms = None
    if speed:
        big = _encoded("PNG", 256)
        start, done = time.perf_counter(), 0
        while done < 200 and (done == 0 or time.perf_counter() - start < 0.5):
            read(big, "speed")
            done += 1
        ms = (time.perf_counter() - start) / done * 1000
    return EvidenceCheckReport(name, plugin, checks, ms)
