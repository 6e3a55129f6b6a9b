"""Hostile input files: every input gets one result (an image or one ImageError line) and the run goes on;
special files are refused before they are opened; memory stays bounded however many large images come."""

from __future__ import annotations

import io
import json
import os
import struct
import threading
import time
import weakref

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from attrib import images
from attrib.cli import cli
from attrib.errors import ImageError
from attrib.extractors.contract import BoundExtractor
from attrib.gallery import Gallery
from attrib.host.manager import ExtractorSpec
from attrib.images import ImageRecord, LoadedImage, decode_bytes, iter_image_files, load_batches, load_image, load_images

from conftest import ColorMean, make_images


class ShippedCohortMean(ColorMean):
    """ColorMean with a shipped cohort embedding, so that enrolling needs no cohort images."""

    name = "hostilemean"

    def cohort_vectors(self, version):
        vectors = np.random.default_rng(0).normal(size=(400, self.dim)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def run(tmp_path, plugin):
    plugin(ShippedCohortMean, name="test-hostile")

    def invoke(*args, expect=0):
        result = CliRunner().invoke(cli, ["--gallery", str(tmp_path / "gallery"), *args], catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result

    return invoke


def rgb_image(w=80, h=72, seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def gif_with_cut_frame(descriptor_bytes: int) -> bytes:
    """A GIF whose trailer is replaced by the start of a second image descriptor, cut after ``descriptor_bytes``."""
    descriptor = b"," + struct.pack("<HHHHB", 0, 0, 80, 72, 0)
    return encoded(rgb_image(), "GIF")[:-1] + descriptor[:descriptor_bytes]


def tiff_ifd_entries(data: bytearray, ifd: int):
    """(offset of each 12-byte entry, tag, type) of the little-endian TIFF directory at ``ifd``."""
    count = struct.unpack_from("<H", data, ifd)[0]
    for i in range(count):
        at = ifd + 2 + 12 * i
        yield (at, *struct.unpack_from("<HH", data, at))


def tiff_second_page_without_width() -> bytes:
    data = bytearray(encoded(rgb_image(), "TIFF", save_all=True, append_images=[rgb_image(seed=1)]))
    first = struct.unpack_from("<I", data, 4)[0]
    second = struct.unpack_from("<I", data, first + 2 + 12 * struct.unpack_from("<H", data, first)[0])[0]
    for at, tag, _ in tiff_ifd_entries(data, second):
        if tag == 256:  # ImageWidth: renamed to a private tag
            struct.pack_into("<H", data, at, 0x7F00)
    return bytes(data)


def tiff_with_rational_strip_offsets() -> bytes:
    data = bytearray(encoded(rgb_image(), "TIFF"))
    for at, tag, _ in tiff_ifd_entries(data, struct.unpack_from("<I", data, 4)[0]):
        if tag == 273:  # StripOffsets typed RATIONAL
            struct.pack_into("<H", data, at + 2, 5)
    return bytes(data)


# Each of these made the previous loader raise something other than an attrib error.
CRAFTED = {
    "cut-descriptor.gif": (lambda: gif_with_cut_frame(6), "decodes"),  # struct.error counting frames
    "no-code-size.gif": (lambda: gif_with_cut_frame(10), "decodes"),  # IndexError counting frames
    "page2-no-width.tif": (tiff_second_page_without_width, "decodes"),  # TypeError: Missing dimensions
    "rational-offsets.tif": (tiff_with_rational_strip_offsets, "TypeError"),  # IFDRational as a file offset
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_files_give_the_first_frame_or_one_image_error(tmp_path, name):
    make, outcome = CRAFTED[name]
    path = tmp_path / name
    path.write_bytes(make())
    if outcome == "decodes":  # only the first frame is read; a damaged later frame does not matter
        assert load_image(path).pixels.shape == (72, 80, 3)
    else:
        with pytest.raises(ImageError) as info:
            load_image(path)
        message = str(info.value)
        assert message.startswith(f"{path}: cannot decode image") and outcome in message and "\n" not in message


@pytest.mark.parametrize("raised", [IndexError("index out of range"), struct.error("unpack_from requires"),
                                    TypeError("Missing dimensions"), KeyError(256), ZeroDivisionError(),
                                    MemoryError()])
def test_any_exception_from_decoding_becomes_one_image_error(monkeypatch, raised):
    def explode(*args, **kwargs):
        raise raised

    monkeypatch.setattr(images.ImageOps, "exif_transpose", explode)
    with pytest.raises(ImageError) as info:
        decode_bytes(encoded(rgb_image(), "PNG"), "crafted.png")
    assert str(info.value).startswith("crafted.png: ") and "\n" not in str(info.value)
    assert type(raised).__name__ in str(info.value) or "memory" in str(info.value)


def test_interrupts_are_not_swallowed(monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(images.ImageOps, "exif_transpose", interrupt)
    with pytest.raises(KeyboardInterrupt):
        decode_bytes(encoded(rgb_image(), "PNG"), "x.png")


def test_only_the_listed_formats_are_decoded(tmp_path):
    path = tmp_path / "image.png"
    rgb_image().save(path, "PPM")  # Pillow reads it, attrib does not
    with pytest.raises(ImageError, match="not a recognised image file"):
        load_image(path)


def load_in_thread(path):
    """load_image(path) on a daemon thread: (finished, result or error); a hang cannot stall the tests."""
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(load_or_error(path)), daemon=True)
    thread.start()
    thread.join(60)
    return bool(outcome), outcome[0] if outcome else None


def load_or_error(path):
    try:
        return load_image(path)
    except ImageError as exc:
        return exc


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_not_read(tmp_path):
    os.mkfifo(tmp_path / "f.png")
    finished, result = load_in_thread(tmp_path / "f.png")
    assert finished and isinstance(result, ImageError)
    assert str(result) == f"{tmp_path / 'f.png'}: is a named pipe (FIFO), not a regular file; only regular files are read"


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_a_link_to_a_device_is_refused_not_read(tmp_path):
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    finished, result = load_in_thread(tmp_path / "zero.png")
    assert finished and isinstance(result, ImageError) and "is a character device, not a regular file" in str(result)


def test_a_file_over_the_byte_cap_is_refused_before_it_is_read(tmp_path, monkeypatch):
    with open(tmp_path / "sparse.png", "wb") as f:
        f.truncate(images.MAX_FILE_BYTES + 1)  # sparse: no disk used

    def never(*args):
        raise AssertionError("read a file that stat already refused")

    monkeypatch.setattr(images, "_read_capped", never)
    with pytest.raises(ImageError, match=f"{images.MAX_FILE_BYTES:,}-byte limit"):
        load_image(tmp_path / "sparse.png")


def test_reading_stops_at_the_cap_whatever_the_size_said(monkeypatch):
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 1000)
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"x" * 5000)
        with pytest.raises(ImageError, match="grew past the 1,000-byte limit"):
            images._read_capped(read_end, 10, "growing.png")  # the size given (10) was a lie
        assert len(os.read(read_end, 10_000)) == 5000 - 1001  # it read one byte past the cap, no more
    finally:
        os.close(read_end)
        os.close(write_end)


def test_missing_dangling_and_looping_paths_are_errors_of_their_own(tmp_path):
    (tmp_path / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    expected = {"missing.png": "no such file", "dangling.png": "broken symbolic link (its target does not exist)",
                "loop.png": "symbolic link loop"}
    for name, reason in expected.items():
        with pytest.raises(ImageError) as info:
            load_image(tmp_path / name)
        assert str(info.value).startswith(f"{tmp_path / name}: {reason}")
    assert list(iter_image_files([tmp_path / "missing.png", tmp_path / "loop.png"])) == [
        tmp_path / "missing.png", tmp_path / "loop.png"]


def hostile_folder(tmp_path):
    """Two good images, and next to them a crafted GIF, a broken link, a link loop and (where possible) a FIFO."""
    folder = tmp_path / "in"
    good = make_images(folder, "red", 2)
    (folder / "crafted.tif").write_bytes(tiff_with_rational_strip_offsets())
    (folder / "dangling.png").symlink_to(folder / "nowhere.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "fifo.png")
    return folder, good


def test_identify_and_verify_answer_every_input_once_and_go_on(run, tmp_path, make_set):
    run("enroll", "-e", "hostilemean", "-g", "red", str(make_set("red", 5)[0].parent))
    folder, good = hostile_folder(tmp_path)
    args = [str(good[0]), str(tmp_path / "missing.png"), str(folder)]
    inputs = [good[0], tmp_path / "missing.png", *iter_image_files([folder])]
    for command in (["identify", "--json"], ["verify", "--json", "-g", "red"]):
        rows = [json.loads(line) for line in run(*command, "-e", "hostilemean", *args, expect=1).stdout.splitlines()]
        assert [row["path"] for row in rows] == [str(p) for p in inputs]
        answered = {row["path"] for row in rows if "error" not in row}
        assert answered == {str(good[0]), *(str(p) for p in good)}
        assert all(row["error"].startswith(row["path"] + ": ") for row in rows if "error" in row)


def test_enroll_stores_the_good_files_and_reports_each_bad_one(run, tmp_path):
    folder, good = hostile_folder(tmp_path)
    result = run("enroll", "--json", "-e", "hostilemean", "-g", "red", str(tmp_path / "missing.png"), str(folder),
                 expect=1)
    report = json.loads(result.stdout)
    assert report["added"] == [str(p) for p in good]
    failed = [row["path"] for row in report["failed"]]
    assert failed == [str(tmp_path / "missing.png")] + [str(p) for p in iter_image_files([folder]) if p not in good]
    assert "red" in run("gallery", "list").stdout


def test_nothing_usable_is_one_line(run, tmp_path):
    result = run("identify", "-e", "hostilemean", str(tmp_path / "a.png"), str(tmp_path / "b"), expect=1)
    assert result.output.strip() == f"Error: no such file or folder: {tmp_path / 'a.png'}, {tmp_path / 'b'}"


def test_a_file_name_that_is_not_utf8_is_enrolled_stored_and_printed_safely(run, tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    name = os.fsencode(folder) + b"/\xff-red.png"
    try:
        with open(name, "wb") as f:
            f.write(encoded(rgb_image(96, 80), "PNG"))
    except (OSError, UnicodeError):
        pytest.skip("this file system does not take non-UTF-8 names")
    shown = f"{folder}/\\xff-red.png"
    report = json.loads(run("enroll", "--json", "-e", "hostilemean", "-g", "red", str(folder)).stdout)
    assert report["added"] == [shown]
    stored = json.loads(run("gallery", "show", "red", "--json").stdout)["samples"]
    assert [sample["path"] for sample in stored] == [str(tmp_path.resolve() / "raw" / "\\xff-red.png")]
    row = json.loads(run("identify", "--json", "-e", "hostilemean", str(folder)).stdout)
    assert row["path"] == shown and row["decision"] == "red"


# -- memory --------------------------------------------------------------------


@pytest.fixture
def alive_at_decode(monkeypatch):
    """Wrap to_rgb: record how many decoded pixel arrays are alive each time a decode starts."""
    alive, counts, lock = [0], [], threading.Lock()
    real = images.to_rgb

    def freed():
        with lock:
            alive[0] -= 1

    def counting(image):
        counts.append(alive[0])
        pixels = real(image)
        with lock:
            alive[0] += 1
        weakref.finalize(pixels, freed)
        return pixels

    monkeypatch.setattr(images, "to_rgb", counting)
    return counts


def many_images(tmp_path, n=40):
    return make_images(tmp_path / "many", "blue", n, size=(100, 100))


@pytest.mark.parametrize("budget_images,most_alive", [(3, 3), (0, 1)])
def test_decoding_ahead_is_bounded_by_pixels(tmp_path, monkeypatch, alive_at_decode, budget_images, most_alive):
    """With room for ``budget_images`` images, at most that many (or the one the consumer holds, when
    every image is over budget) are alive when another decode starts, and every image still comes."""
    monkeypatch.setattr(images, "PIXELS_AHEAD", budget_images * 100 * 100)
    paths = many_images(tmp_path)
    stream = load_images(paths, workers=4)
    seen = [next(stream)[0]]
    time.sleep(0.3)  # room for the threads to run ahead as far as they are allowed
    for path, loaded in stream:  # holds one image at a time
        seen.append(path if isinstance(loaded, LoadedImage) else loaded)
    assert seen == paths
    assert max(alive_at_decode) <= most_alive


def test_a_batch_drops_its_pixels_when_the_next_is_asked_for(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "BATCH_PIXELS", 3 * 100 * 100)  # three images of 100x100 fill a batch
    batches = load_batches(many_images(tmp_path, 7))
    first = next(batches)
    assert len(first) == 3 and all(item.pixels is not None for item in first)
    second = next(batches)
    assert all(item.pixels is None and item.width == 100 and len(item.sha256) == 64 for item in first)
    assert [len(b) for b in [first, second, *batches]] == [3, 3, 1]


def test_enroll_keeps_no_pixels(tmp_path, monkeypatch, alive_at_decode):
    monkeypatch.setattr(images, "PIXELS_AHEAD", 2 * 100 * 100)
    monkeypatch.setattr(images, "BATCH_PIXELS", 2 * 100 * 100)
    stored = []
    with Gallery(tmp_path / "g") as gallery:
        from attrib.storage import bulk

        store_chunk = bulk.store_chunk
        monkeypatch.setattr(bulk, "store_chunk", lambda s, g, imgs, *a, **k: stored.extend(imgs) or store_chunk(
            s, g, imgs, *a, **k))
        report = gallery.enroll("blue", many_images(tmp_path), BoundExtractor(ExtractorSpec(ShippedCohortMean, "t")))
        assert len(report.added) == 40 and gallery.generators()[0].samples == 40
    assert len(stored) == 40
    assert all(isinstance(s, ImageRecord) and (s.width, s.height) == (100, 100) for s in stored)
    assert max(alive_at_decode) <= 3  # not all 40: the decoded images are not kept until the end
