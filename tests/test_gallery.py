"""The gallery library: persistence, index cache repair, version safety, plugin failures."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from attrib.errors import EmptyGallery, ExtractorError, ExtractorMismatch
from attrib.extractors.contract import BoundExtractor
from attrib.host.manager import ExtractorSpec
from attrib.gallery import Gallery

from conftest import ColorMean


def bound(cls=ColorMean, **options):
    return BoundExtractor(ExtractorSpec(cls, "test-plugin"), options)


@pytest.fixture
def filled(tmp_path, make_set):
    gallery = Gallery(tmp_path / "g")
    for name in ("red", "green", "blue"):
        gallery.enroll(name, make_set(name, 5), bound())
    yield gallery
    gallery.close()


def test_gallery_survives_the_process(tmp_path, make_set):
    red = make_set("red", 4)
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from conftest import ColorMean\n"
        "from attrib.extractors.contract import BoundExtractor\n"
        "from attrib.host.manager import ExtractorSpec\n"
        "from attrib.gallery import Gallery\n"
        "from pathlib import Path\n"
        "g = Gallery(%r)\n"
        "g.enroll('red', [Path(p) for p in %r], BoundExtractor(ExtractorSpec(ColorMean, 'x')))\n"
    ) % (str(__import__("pathlib").Path(__file__).parent), str(tmp_path / "g"), [str(p) for p in red])
    subprocess.run([sys.executable, "-c", code], check=True)
    with Gallery(tmp_path / "g") as gallery:
        assert [(g.name, g.samples) for g in gallery.generators()] == [("red", 4)]
        result = next(gallery.identify([red[0]], bound()))
        assert result.generator == "red" and result.score == pytest.approx(1.0, abs=1e-5)


def test_deleted_index_is_rebuilt_and_user_told(filled, make_set):
    messages = []
    filled.notify = messages.append
    for path in (filled.root / "index").iterdir():
        path.unlink()
    query = make_set("green", 1, seed=3)
    assert next(filled.identify(query, bound())).nearest.generator == "green"
    assert any("rebuilt it from 15 stored vectors" in m for m in messages)


def test_stale_index_is_rebuilt(filled, make_set, tmp_path):
    # an index saved when the gallery had only 'red' and 'green'
    other = Gallery(tmp_path / "other")
    other.enroll("red", make_set("red", 5), bound())
    stale = list((other.root / "index").iterdir())
    for path in stale:
        (filled.root / "index" / path.name).write_bytes(path.read_bytes())
    messages = []
    filled.notify = messages.append
    result = next(filled.identify(make_set("blue", 1, seed=4), bound()))
    assert result.nearest.generator == "blue"
    assert any("out of date" in m for m in messages)


def test_version_mismatch_is_refused_then_reembed_fixes_it(filled, make_set):
    class ColorMeanV2(ColorMean):
        version = "2"

    with pytest.raises(ExtractorMismatch, match=r"attrib gallery reembed --extractor colormean"):
        list(filled.identify(make_set("red", 1, seed=2), bound(ColorMeanV2)))
    with pytest.raises(ExtractorMismatch, match="never mixed"):
        filled.enroll("red", make_set("red", 2, seed=7), bound(ColorMeanV2))
    report = filled.reembed(bound(ColorMeanV2))
    assert report.embedded == 15 and report.problems == [] and report.replaced == ["colormean@1"]
    assert filled.extractor_keys() == ["colormean@2"]
    assert next(filled.identify(make_set("red", 1, seed=2), bound(ColorMeanV2))).nearest.generator == "red"


def test_reembed_reports_missing_and_changed_files(tmp_path, make_set):
    gallery = Gallery(tmp_path / "g")
    paths = make_set("red", 3) + make_set("green", 3)
    gallery.enroll("red", paths[:3], bound())
    gallery.enroll("green", paths[3:], bound())
    paths[0].unlink()
    paths[4].write_bytes(paths[5].read_bytes())
    report = gallery.reembed(bound(mode="other"))
    assert report.embedded == 4
    assert len(report.problems) == 2
    assert any("no such file" in p for p in report.problems)
    assert any("changed since enrollment" in p for p in report.problems)
    assert report.replaced == []  # incomplete: the old vectors are kept


class Raises(ColorMean):
    def embed_batch(self, images):
        raise RuntimeError("model exploded")


class WrongShape(ColorMean):
    def embed_batch(self, images):
        return np.zeros((len(images), 5), np.float32)


class ReturnsNaN(ColorMean):
    def embed_batch(self, images):
        out = super().embed_batch(images)
        out[0, 0] = np.nan
        return out


@pytest.mark.parametrize(
    "cls,needle", [(Raises, "raised RuntimeError: model exploded"), (WrongShape, "shape"), (ReturnsNaN, "NaN")]
)
def test_misbehaving_plugin_is_named_and_gallery_untouched(filled, make_set, cls, needle):
    before = [(g.name, g.samples) for g in filled.generators()]
    db_bytes = (filled.root / "gallery.db").stat().st_size
    with pytest.raises(ExtractorError, match=needle) as info:
        filled.enroll("purple", make_set("red", 3, seed=11), bound(cls))
    assert "test-plugin" in str(info.value)
    assert [(g.name, g.samples) for g in filled.generators()] == before
    assert (filled.root / "gallery.db").stat().st_size == db_bytes


def test_empty_gallery_says_how_to_enroll(tmp_path, make_set):
    with Gallery(tmp_path / "g") as gallery, pytest.raises(EmptyGallery, match="attrib enroll"):
        list(gallery.identify(make_set("red", 1), bound()))


def test_audit_and_schema_version(filled, store_of):
    from attrib.storage import models as db

    actions = [entry["action"] for entry in filled.audit_log()]
    assert actions.count("enroll") == 3 and "calibrate" in actions
    assert filled.audit_log(action="enroll")[0]["detail"]["extractor"] == "colormean@1"
    with store_of(filled.root).Session() as session:
        assert db.schema_version(session) == db.SCHEMA_VERSION


def test_newer_schema_is_refused(filled, store_of):
    from sqlalchemy import update

    from attrib.storage import models as db
    from attrib.errors import GalleryError

    with store_of(filled.root).Session.begin() as session:
        session.execute(update(db.Meta).where(db.Meta.key == "schema_version").values(value="99"))
    filled.close()
    with pytest.raises(GalleryError, match="newer than this attrib supports"):
        Gallery(filled.root)


def test_read_only_view_is_used_when_trusted_and_repaired_when_not(filled, make_set):
    from attrib.gallery import open_gallery
    from attrib.upkeep.freshness import read_view

    key = bound().identity.key
    assert read_view(filled.root, key) is not None
    query = make_set("blue", 2, seed=12)
    fast = [r.to_json() for r in open_gallery(filled.root, read_only=True).identify(query, bound())]
    full = [r.to_json() for r in filled.identify(query, bound())]
    assert fast == full
    for path in (filled.root / "index").glob("*.labels.npy"):
        path.unlink()
    assert read_view(filled.root, key) is None
    messages = []
    reader = open_gallery(filled.root, notify=messages.append, read_only=True)
    repaired = [r.to_json() for r in reader.identify(query, bound())]
    assert repaired == full and messages
    assert read_view(filled.root, key) is not None


def test_calibration_stores_the_separation_fusion_weighs_by(filled, store_of):
    from sqlalchemy import select

    from attrib.storage import models as db
    from attrib.upkeep.freshness import read_view

    view = read_view(filled.root, bound().identity.key)
    # colour means tell red, green and blue apart: held-out genuine scores sit well above impostors
    assert view.separation is not None and view.separation > 1.0
    with store_of(filled.root).Session() as session:
        rows = session.execute(select(db.Calibration.generator_id, db.Calibration.separation)).all()
    assert [sep for gid, sep in rows if gid is None] == [pytest.approx(view.separation)]
    assert all(sep is None for gid, sep in rows if gid is not None)


def test_a_locked_database_is_reported_as_busy_by_the_store(filled, store_of):
    from sqlalchemy.exc import OperationalError

    from attrib.errors import GalleryBusy

    store = store_of(filled.root)
    with pytest.raises(GalleryBusy, match="another attrib process is writing to it; retry"):
        with store.writing():
            raise OperationalError("INSERT", {}, Exception("database is locked"))
    with pytest.raises(OperationalError, match="disk I/O error"):  # anything else is not hidden
        with store.writing():
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))
