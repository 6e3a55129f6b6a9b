"""What one enroll reports, the images of an enroll decoded, checked and embedded chunk by chunk, the path
each sample is stored with (its file's, or ``upload:NAME`` for an upload of which no copy is kept), and the
thumbnails stored with them: small previews (WebP, at most :data:`SIDE` px on the long side) made from the
decoded pixels, so reports can show what was enrolled after the original files moved (stored through
:mod:`attrib.storage.thumbnails`; :func:`fill_in` makes those an older gallery lacks from the files).
Re-embedding (``Gallery.reembed``) reads the samples again from their stored paths (:func:`embed_again`)."""

from __future__ import annotations

import io
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, AbstractSet, Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from .delivery import ORIGINAL, default_ladder, measured, parse_ladder, rung_of
from .errors import AttribError, EnrollmentConflict
from .extractors.contract import BoundExtractor
from .images import BATCH, ImageRecord, LoadedImage, display_path, load_batches, load_images
from .names import check_name

if TYPE_CHECKING:
    from .storage.edits import StoredSample
    from .storage.interface import GalleryReads
    from .storage.sql import SQLStore


@dataclass
class EnrollReport:
    """What one enroll did: files added, skipped (already enrolled) and failed, and the calibration."""

    generator: str
    added: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    calibration: str = ""
    versions: list[str] = field(default_factory=list)  # the delivery versions embedded too (attrib.delivery)
    extractors: list[str] = field(default_factory=list)  # identity keys of the extractors each image was embedded by

    def to_json(self, extractor_key: str, rename: Callable[[str], str] = str) -> dict[str, Any]:
        """What `attrib enroll --json` prints; ``rename`` maps each shown path (also inside messages) to
        the name to print (the HTTP API prints uploaded file names)."""

        def text(message: str) -> str:
            return next((message.replace(p, rename(p)) for p in (*self.added, *(p for p, _ in self.skipped),
                                                                  *(p for p, _ in self.failed))
                         if p in message and rename(p) != p), message)

        return {
            "generator": self.generator,
            "extractor": extractor_key,
            "added": [rename(p) for p in self.added],
            "skipped": [{"path": rename(p), "reason": text(r)} for p, r in self.skipped],
            "failed": [{"path": rename(p), "error": text(r)} for p, r in self.failed],
            "calibration": self.calibration,
            "versions": self.versions,
        }


# -- stored paths -------------------------------------------------------
# A sample's stored path is the file it was read from at enrollment, or, for an image uploaded to
# ``attrib serve`` without a kept copy, a placeholder ``upload:NAME`` (NAME: the uploaded base name) that
# names no local file. Enrolling the same image again from a file (or uploading it to a server that keeps
# uploads) replaces its placeholder with that file's path (:func:`relink`), so ``gallery reembed`` can read
# it again.

PLACEHOLDER_PREFIX = "upload:"
StoredAs = Callable[[LoadedImage], str]  # the path to store for an image read from its (given) path


def placeholder(name: str) -> str:
    """The stored path of an uploaded image of which no copy is kept."""
    return PLACEHOLDER_PREFIX + name


def is_placeholder(path: str | Path) -> bool:
    return str(path).startswith(PLACEHOLDER_PREFIX)


def stored_path(image: LoadedImage, stored_as: StoredAs | None) -> str:
    """The path stored for ``image``: ``stored_as(image)``, by default the file's resolved path."""
    return stored_as(image) if stored_as is not None else str(image.record().path)


def relink(store: SQLStore, generator: str, images: Sequence[LoadedImage], stored_as: StoredAs | None = None
           ) -> dict[str, str]:
    """Give each sample of ``generator`` among ``images`` (by sha256) whose stored path is a placeholder the
    path it would be stored under now, unless that is a placeholder too; one transaction under the writer
    lock. Returns {sha256: the placeholder replaced}."""
    from .storage import bulk

    waiting = bulk.paths_starting(store, generator, [image.sha256 for image in images], PLACEHOLDER_PREFIX)
    if not waiting:
        return {}
    paths = {image.sha256: stored_path(image, stored_as) for image in images if image.sha256 in waiting}
    paths = {sha256: path for sha256, path in paths.items() if not is_placeholder(path)}
    if not paths:
        return {}
    with store.lock.held():
        replaced = bulk.replace_paths(store, generator, paths, PLACEHOLDER_PREFIX)
    return {sha256: waiting[sha256] for sha256 in replaced}


# -- enrolling ----------------------------------------------------------


@dataclass
class Chunk:
    """Images embedded for one transaction: their records, the paths shown for them, their vectors, and
    the vectors of each delivery version (version, vectors), row for row."""

    records: list[ImageRecord]
    shown: list[str]
    vectors: np.ndarray
    versions: list[tuple[BoundExtractor, np.ndarray]] = field(default_factory=list)


def embedded_chunks(report: EnrollReport, paths: Iterable[Path], extractor: BoundExtractor,
                    owners_of: Callable[[list[str]], dict[str, str]], progress: Callable[[int], None] | None = None,
                    stored_as: StoredAs | None = None,
                    replace_placeholders: Callable[[list[LoadedImage]], dict[str, str]] | None = None,
                    versions: Sequence[BoundExtractor] = ()) -> Iterator[Chunk]:
    """Per decoded batch: the records (each with its thumbnail, and the path ``stored_as`` gives, by default
    the file's), shown paths and vectors of the images not enrolled yet (who owns a sha256 is asked of
    ``owners_of`` per batch); what is enrolled already (under this generator, or earlier in this run) or
    under another, or unreadable, goes into ``report``. The images already enrolled under this generator
    go to ``replace_placeholders`` (see :func:`relink`: {sha256: the placeholder path it replaced}). Each
    delivery version of ``versions`` (:func:`attrib.delivery.delivered`) embeds the same images too."""
    seen: set[str] = set()
    for chunk in load_batches(paths, measure=measured):
        loaded = []
        for item in chunk:
            if progress:
                progress(1)
            if isinstance(item, LoadedImage):
                loaded.append(item)
            else:
                report.failed.append((display_path(item[0]), item[1]))
        owners = owners_of([item.sha256 for item in loaded]) if loaded else {}
        mine = [item for item in loaded if owners.get(item.sha256) == report.generator]
        replaced = replace_placeholders(mine) if replace_placeholders and mine else {}
        new = []
        for item in loaded:
            shown, owner = display_path(item.path), owners.get(item.sha256)
            if owner == report.generator or item.sha256 in seen:
                report.skipped.append((shown, skip_reason(report.generator, replaced.pop(item.sha256, None))))
            elif owner is not None:
                report.failed.append((shown, conflict_message(shown, owner, report.generator)))
            else:
                seen.add(item.sha256)
                new.append(item)
        if new:
            pixels = [item.require_pixels() for item in new]
            yield Chunk([replace(item.record(), path=Path(stored_path(item, stored_as)),
                                 thumbnail=make_thumbnail(item.require_pixels())) for item in new],
                        [display_path(item.path) for item in new], extractor.embed(pixels),
                        [(version, version.embed(pixels)) for version in versions])


def ladder_of(store: SQLStore | None, extractor: BoundExtractor, versions: Sequence[str] | str | None = None
              ) -> tuple[str, ...]:
    """The delivery versions (rungs, :mod:`attrib.delivery.versions`) an enroll with ``extractor`` embeds into
    the gallery of ``store`` (None: a new, empty gallery): those it holds for the extractor, and ``versions``
    (rungs, or their comma-separated text). An extractor the gallery holds no vectors of yet takes
    ``versions``, else the rungs of the gallery's other extractors (so that fused extractors share their
    versions), else, in a new gallery, :func:`attrib.delivery.default_ladder`; a gallery enrolled without
    versions keeps none unless ``versions`` names some."""
    requested = parse_ladder(versions) if versions is not None else ()
    if store is None:
        return requested if versions is not None else default_ladder()
    keys = store.extractor_keys()
    if extractor.identity.key in keys:
        return parse_ladder([*store.delivery_versions(extractor.identity.key), *requested])
    if versions is not None:
        return requested
    return parse_ladder(sorted({rung_of(key) for key in keys} - {ORIGINAL}))


def skip_reason(generator: str, replaced: str | None = None) -> str:
    """Why an image already enrolled under ``generator`` is skipped (and the placeholder path it replaced)."""
    reason = f"already enrolled under {generator!r}"
    return f"{reason}; its stored path {replaced} replaced, so it can be read again" if replaced else reason


def conflict_message(path: str, owner: str, generator: str) -> str:
    return str(EnrollmentConflict(
        f"{path}: already enrolled under generator {owner!r}, refused for {generator!r}; "
        f"remove it from {owner!r} first if it was mislabelled: `attrib gallery remove-sample {shlex.quote(path)}`"))


def validate_name(name: str, what: str = "generator") -> str:
    """``name`` when it follows the naming rule of :mod:`attrib.names`; else BadName naming it and the rule."""
    return check_name(name, what)


# -- the extractors of an enroll ----------------------------------------
# A gallery that holds vectors of several extractors (fused by ``identify -e a+b``) gets every new sample
# embedded by each of them, so no sample is left without a vector of one and no fused answer is computed
# over a part of the gallery.


def held_extractors(store: SQLStore) -> list[tuple[str, str, dict[str, Any]]]:
    """(identity key, name, options) of every extractor (not a delivery version) the gallery holds vectors of."""
    held = []
    for extractor_id, key in store.extractors():
        parsed = _parse_key(key)
        if parsed is not None and parsed[2] is None and store.vector_count(extractor_id):
            held.append((key, parsed[0], parsed[1]))
    return held


def _parse_key(key: str) -> tuple[str, dict[str, Any], str | None] | None:
    """(name, options, delivery) of an identity key (:attr:`attrib.extractors.contract.ExtractorIdentity.key`)."""
    import json

    head, brace, rest = key.partition("{")
    options: dict[str, Any] = {}
    if brace:
        try:
            options, end = json.JSONDecoder().raw_decode(brace + rest)
        except ValueError:
            return None
        tail = (brace + rest)[end:]
    else:
        head, bar, delivery = key.partition("|")
        tail = bar + delivery
    name = head.rpartition("@")[0]
    if not name or not isinstance(options, dict) or (tail and not tail.startswith("|")):
        return None
    return name, options, tail[1:] or None


def enroll_extractors(store: SQLStore, given: Sequence[BoundExtractor], where: str) -> list[BoundExtractor]:
    """``given`` and every other extractor the gallery holds vectors of, bound from its stored name and options:
    the extractors an enroll embeds with (``given`` may be empty for a gallery that holds some). GalleryError
    naming the fix when one held cannot be bound that way (an option the gallery does not store, such as a
    weights file), or when a given extractor is new to a gallery that has samples (they would have no vector
    of it)."""
    from .errors import GalleryError
    from .extractors.resolve import bind_extractor

    held = held_extractors(store)
    if not given and not held:
        raise GalleryError(f"gallery {where} holds no extractor yet: name one to enroll with (e.g. -e residual)")
    given_names = {e.name for e in given}
    held_names = {name for _, name, _ in held}
    extractors = list(given)
    for key, name, options in held:
        if name in given_names:
            continue  # another version or option set of a given extractor: refused when stored, naming reembed
        try:
            bound = bind_extractor(name, {k: str(v) for k, v in options.items()})
            problem = None if bound.identity.key == key else f"set up again it is {bound.identity.key}"
        except AttribError as exc:
            problem = str(exc)
        if problem is not None:
            names = "+".join(dict.fromkeys([*(e.name for e in given), *(n for _, n, _ in held)]))
            raise GalleryError(
                f"gallery {where} holds {key} vectors too, so every sample enrolled needs one, but {name} cannot be "
                f"set up from what the gallery stores ({problem}); enroll with every extractor: "
                f"`attrib enroll -e {names} -o {name}.KEY=VALUE ...`")
        extractors.append(bound)
    if held:
        for extractor in given:
            if extractor.name not in held_names:
                raise GalleryError(
                    f"gallery {where} has samples without {extractor.identity.key} vectors, so enrolling with it "
                    f"would leave them out of every answer that uses it; embed them first with `attrib gallery "
                    f"reembed -e {extractor.name}`, or enroll with the gallery's extractors "
                    f"({', '.join(key for key, _, _ in held)})")
    return extractors


def require_single(store: SQLStore, extractor: BoundExtractor, where: str) -> None:
    """GalleryError when the gallery holds vectors of other extractors than ``extractor``: vectors of one
    extractor alone (``Gallery.enroll_embedded``) would leave the samples without the others'."""
    from .errors import GalleryError

    others = [key for key, name, _ in held_extractors(store) if name != extractor.name]
    if others:
        raise GalleryError(f"gallery {where} holds {', '.join(others)} vectors too, and vectors given for "
                           f"{extractor.identity.key} alone would leave the new samples without them: enroll the "
                           "files with `Gallery.enroll`, which embeds them with every extractor")


def require_fusable(reads: GalleryReads, extractors: Sequence[BoundExtractor], where: str) -> None:
    """GalleryError naming the fix when ``extractors`` (two or more, to fuse) do not hold vectors of the same
    samples: a fused answer over the samples one of them lacks would score generators on different sets."""
    from .errors import GalleryError

    if len(extractors) < 2:
        return
    ids = {e.identity.key: reads.extractor_id(e.identity.key) for e in extractors}
    counts = {key: reads.vector_count(i) if i is not None else 0 for key, i in ids.items()}
    most = max(counts.values())
    short = [(key, count) for key, count in counts.items() if count < most]
    if short:
        key, count = short[0]
        raise GalleryError(
            f"gallery {where} cannot fuse {'+'.join(counts)}: {most - count} of the {most} samples have no {key} "
            f"vector (enrolled without it); run `attrib gallery reembed -e {key.partition('@')[0]}` to embed "
            "them, or identify with one extractor")


def find_sample(store: SQLStore, sample: str | Path) -> StoredSample:
    """The one enrolled sample ``sample`` names: a sha256, or a prefix of at least 8 hex digits of one (as
    ``attrib gallery show`` prints them); else a path, as stored or resolved, or of a file whose content is
    enrolled. UnknownGenerator-like GalleryError naming what was looked for when none or several match."""
    import hashlib
    import os

    from .errors import GalleryError
    from .images import read_file
    from .storage.edits import samples_by_path, samples_by_sha256

    text = str(sample)
    hexdigits = text.lower()
    if 8 <= len(hexdigits) <= 64 and all(c in "0123456789abcdef" for c in hexdigits) and not os.path.exists(text):
        found = samples_by_sha256(store, hexdigits)
        if len(found) > 1:
            raise GalleryError(f"sha256 prefix {text} matches several samples ("
                               f"{', '.join(s.sha256[:16] for s in found)}); give more digits")
        if found:
            return found[0]
        raise GalleryError(f"no sample with sha256 {text}... is enrolled; `attrib gallery show NAME` lists them")
    candidates = [text, str(Path(text).expanduser().resolve())]
    found = samples_by_path(store, list(dict.fromkeys(candidates)))
    if not found and os.path.isfile(text):
        found = samples_by_sha256(store, hashlib.sha256(read_file(text)).hexdigest())
    if not found:
        raise GalleryError(f"no sample enrolled from {display_path(text)} (by its stored path or its content); "
                           "name it by sha256 as `attrib gallery show NAME` lists them")
    if len(found) > 1:
        raise GalleryError(f"{display_path(text)} is the stored path of several samples ("
                           f"{', '.join(f'{s.generator}: {s.sha256[:12]}' for s in found)}); name one by sha256")
    return found[0]


def store_cohort(store: SQLStore, extractor: BoundExtractor, extractor_id: int, version: str,
                 notify: Callable[[str], None]) -> None:
    """Store the impostor cohort embedded by ``extractor`` (the plugin's shipped vectors when it has them) unless
    the gallery has it for cohort ``version``."""
    if store.cohort(extractor_id, version) is not None:
        return
    rung = extractor.identity.delivery
    if rung is None:
        shipped = getattr(extractor.impl, "cohort_vectors", None)
        vectors = shipped(version) if callable(shipped) else None
    else:
        shipped = getattr(extractor.impl, "delivered_cohort_vectors", None)
        vectors = shipped(version, rung) if callable(shipped) else None
    if vectors is None:
        from .synthetic import cohort

        notify(f"embedding the impostor cohort ({cohort.size()} images of generators never enrolled) "
               f"with {extractor.identity.key} for open-set calibration; once per gallery and extractor")
        vectors = cohort.embed(extractor)
    store.save_cohort(extractor_id, version, np.asarray(vectors, dtype=np.float32))


# -- thumbnails ---------------------------------------------------------

SIDE = 128  # pixels on the long side, at most
FORMAT = "webp"
QUALITY = 75


@dataclass(frozen=True)
class Thumbnail:
    """An encoded preview and its size in pixels."""

    data: bytes
    width: int
    height: int
    format: str = FORMAT


def make_thumbnail(pixels: np.ndarray, side: int = SIDE) -> Thumbnail:
    """A WebP preview of ``pixels`` (HxWx3 uint8), its long side at most ``side`` px, the aspect kept
    (never enlarged; a side is never below 1 px)."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(pixels[..., :3]))
    image.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=2.0)
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=QUALITY, method=2)
    return Thumbnail(buffer.getvalue(), image.width, image.height)


def fill_in(store: SQLStore, skip: AbstractSet[int] = frozenset(), ready: dict[int, Thumbnail] | None = None,
            problems: list[str] | None = None, chunk: int = 256,
            notify: Callable[[str], None] | None = None) -> int:
    """Store a thumbnail for every sample of ``store`` that lacks one, from ``ready`` (sample id ->
    thumbnail already made) or else read again from its path and checked against its sha256; samples in
    ``skip`` are left alone. Files missing, unreadable or changed are appended to ``problems``. Each
    ``chunk`` is one transaction under the writer lock. Returns how many were stored."""
    from .storage import thumbnails as stored

    ready = ready or {}
    failed: list[str] = []
    todo = [row for row in stored.samples_without(store) if row[0] not in skip]
    added = 0
    for start in range(0, len(todo), chunk):
        part = todo[start: start + chunk]
        made = {sample_id: ready[sample_id] for sample_id, *_ in part if sample_id in ready}
        reread = [row for row in part if row[0] not in made]
        for (sample_id, path, sha256, generator), (_, image) in zip(reread, load_images(Path(r[1]) for r in reread)):
            if not isinstance(image, LoadedImage):
                failed.append(f"thumbnail of a sample of {generator!r} ({sha256[:12]}): {image}")
            elif image.sha256 != sha256:
                failed.append(f"thumbnail of a sample of {generator!r}: {path} changed since enrollment "
                              f"(sha256 {image.sha256[:12]} != {sha256[:12]})")
            else:
                made[sample_id] = make_thumbnail(image.require_pixels())
        with store.lock.held():
            added += stored.add(store, made)
    if notify and failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        notify(f"added {added} thumbnails; left without one: {failed[0]}{more}")
    elif notify and added:
        notify(f"added {added} thumbnails")
    if problems is not None:
        problems.extend(failed)
    return added


# -- re-embedding -------------------------------------------------------
# ``Gallery.reembed`` reads the stored samples again from their paths; placeholders have nothing to read
# and are counted apart from files that are missing or changed.


@dataclass
class ReembedReport:
    """What one re-embed did. ``problems``: samples whose file is missing, unreadable or changed;
    ``uploaded``: samples uploaded without a kept copy, which cannot be read again."""

    extractor: str
    embedded: int = 0
    present: int = 0
    problems: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    thumbnails_added: int = 0
    thumbnail_problems: list[str] = field(default_factory=list)  # samples left without one (file moved, changed)
    uploaded: list[str] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)  # delivery version -> samples embedded for it

    @property
    def complete(self) -> bool:
        """Whether every sample now has a vector of this extractor."""
        return not (self.problems or self.uploaded)


def embed_again(todo: Sequence[tuple[int, str, str, str]], extractor: BoundExtractor, report: ReembedReport,
                progress: Callable[[int], None] | None = None
                ) -> tuple[list[tuple[int, np.ndarray]], dict[int, Thumbnail], set[int]]:
    """Read again and embed the samples of ``todo`` ((sample id, path, sha256, generator)): (sample id,
    vector) pairs, the thumbnails made on the way, and the ids of the samples left out, each of them
    reported in ``report`` (``problems`` or ``uploaded``)."""
    new_vectors: list[tuple[int, np.ndarray]] = []
    made: dict[int, Thumbnail] = {}
    unread: set[int] = set()
    for sample_id, path, sha256, generator in todo:
        if is_placeholder(path):
            report.uploaded.append(f"sample of {generator!r} ({sha256[:12]}): {path}")
            unread.add(sample_id)
    readable = [row for row in todo if row[0] not in unread]
    if progress and unread:
        progress(len(unread))
    loaded = load_images(Path(path) for _, path, _, _ in readable)
    for start in range(0, len(readable), BATCH):
        batch_ids, pixels = [], []
        for (sample_id, path, sha256, generator), (_, image) in zip(readable[start: start + BATCH], loaded):
            if not isinstance(image, LoadedImage):
                report.problems.append(f"sample of {generator!r} ({sha256[:12]}): {image}")
                unread.add(sample_id)
            elif image.sha256 != sha256:
                report.problems.append(
                    f"sample of {generator!r}: {path} changed since enrollment (sha256 {image.sha256[:12]} "
                    f"!= {sha256[:12]}); remove and re-enroll it"
                )
                unread.add(sample_id)
            else:
                batch_ids.append(sample_id)
                pixels.append(image.require_pixels())
                made[sample_id] = make_thumbnail(image.require_pixels())
            if progress:
                progress(1)
        if pixels:
            new_vectors.extend(zip(batch_ids, extractor.embed(pixels)))
    return new_vectors, made, unread
