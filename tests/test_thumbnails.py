"""Thumbnails stored with the gallery: made from the pixels at enrollment (one per added sample, a small
WebP with the aspect kept), removed with their generator, readable after the original file moved, filled in
by ``reembed`` for a gallery enrolled without them, and the table added to a schema-5 gallery on open;
on SQLite and PostgreSQL."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import text

from attrib.gallery import Gallery
from attrib.storage.schema import HEAD_REVISION, SCHEMA_VERSION
from attrib.enrollment import SIDE, make_thumbnail

from gallery_helpers import bound


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def sql(store, statement: str):
    with store.engine.begin() as connection:
        return connection.execute(text(statement)).all() if statement.startswith("SELECT") else \
            connection.execute(text(statement))


def sha256s(gallery: Gallery, name: str) -> list[str]:
    return [sample["sha256"] for sample in gallery.generator_detail(name)["samples"]]


def test_a_thumbnail_keeps_the_aspect_and_is_never_enlarged():
    import numpy as np

    wide = make_thumbnail(np.zeros((200, 300, 3), np.uint8))
    assert (wide.width, wide.height) == (SIDE, 85) and decoded(wide.data).size == (SIDE, 85)
    tall = make_thumbnail(np.zeros((1000, 10, 3), np.uint8))
    assert tall.height == SIDE and tall.width == 1
    small = make_thumbnail(np.zeros((40, 60, 3), np.uint8))
    assert (small.width, small.height) == (60, 40)


def test_enroll_stores_one_thumbnail_per_added_sample_and_remove_drops_them(gallery_location, make_set,
                                                                           store_of):
    red = make_set("red", 5, size=(300, 200))
    with Gallery(gallery_location) as g:
        store = store_of(gallery_location)
        g.enroll("red", red[:3], bound())
        report = g.enroll("red", red, bound())  # three already enrolled: skipped, no second thumbnail
        assert len(report.added) == 2 and len(report.skipped) == 3
        g.enroll("blue", make_set("blue", 3, size=(80, 120)), bound())
        assert sql(store, "SELECT count(*) FROM thumbnails") == [(8,)]
        shown = g.thumbnails(sha256s(g, "red") + ["0" * 64])
        assert sorted(shown) == sorted(sha256s(g, "red"))
        for data in shown.values():
            image = decoded(data)
            assert image.format == "WEBP" and image.size == (SIDE, 85)
            assert len(data) < 16_000
        blue = g.generator_samples("blue")
        assert [s["sha256"] for s in blue] == sha256s(g, "blue")
        assert all(decoded(s["thumbnail"]).size == (80, 120) for s in blue)
        g.remove("red")
        assert sql(store, "SELECT count(*) FROM thumbnails") == [(3,)]
        assert g.thumbnails(sha256s(g, "blue")).keys() == set(sha256s(g, "blue"))


def test_thumbnails_outlive_the_original_files(tmp_path, make_set):
    paths = make_set("green", 3, size=(256, 256))
    with Gallery(tmp_path / "g") as g:
        g.enroll("green", paths, bound())
        wanted = sha256s(g, "green")
    moved = tmp_path / "elsewhere"
    paths[0].parent.rename(moved)
    with Gallery(tmp_path / "g", read_only=True) as g:  # the fast read-only path
        shown = g.thumbnails(wanted)
        assert g._opened is None  # the SQL store was never opened
    assert sorted(shown) == sorted(wanted) and all(decoded(d).size == (SIDE, SIDE) for d in shown.values())
    with Gallery(tmp_path / "g") as g:
        assert all(s["thumbnail"] is not None for s in g.generator_samples("green"))


def test_reembed_fills_in_the_thumbnails_an_older_gallery_lacks(gallery_location, make_set, store_of):
    red, blue = make_set("red", 4, size=(200, 300)), make_set("blue", 3)
    with Gallery(gallery_location) as g:
        g.enroll("red", red, bound())
        g.enroll("blue", blue, bound())
        store = store_of(gallery_location)
        sql(store, "DELETE FROM thumbnails")  # as enrolled before galleries kept thumbnails
        assert g.check().consistent  # a gallery without thumbnails is not damaged
        sql(store, "DELETE FROM vectors WHERE sample_id = (SELECT max(id) FROM samples)")  # and one vector lost
        assert g.generator_samples("red")[0]["thumbnail"] is None
    red[0].unlink()  # a file that moved: reported, not fatal
    notes = []
    with Gallery(gallery_location, notify=notes.append) as g:
        report = g.reembed(bound())
        assert report.embedded == 1 and report.present == 6 and report.problems == []
        assert report.thumbnails_added == 6
        assert len(report.thumbnail_problems) == 1 and "'red'" in report.thumbnail_problems[0]
        assert any(note.startswith("added 6 thumbnails; left without one: thumbnail of a sample of 'red'")
                   for note in notes)
        present = g.thumbnails(sha256s(g, "red") + sha256s(g, "blue"))
        assert len(present) == 6 and all(decoded(d).size == (85, SIDE) for d in
                                         (present[s] for s in sha256s(g, "red") if s in present))
        assert g.reembed(bound()).thumbnails_added == 0
        assert g.check().consistent


def test_a_schema_5_gallery_gains_the_thumbnails_table(gallery_location, make_set, store_of):
    with Gallery(gallery_location) as g:
        g.enroll("red", make_set("red", 3), bound())
    store = store_of(gallery_location)  # opened at the current schema, so it migrates nothing itself
    with store.engine.begin() as connection:  # back to what the schema 5 attrib wrote
        connection.execute(text("DROP TABLE thumbnails"))
        connection.execute(text("UPDATE meta SET value = '5' WHERE key = 'schema_version'"))
        connection.execute(text("UPDATE alembic_version SET version_num = '0005'"))
    with Gallery(gallery_location) as g:
        assert sql(store, "SELECT version_num FROM alembic_version") == [(HEAD_REVISION,)]
        assert sql(store, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
        assert [s["thumbnail"] for s in g.generator_samples("red")] == [None] * 3
        assert g.check().consistent
        assert g.reembed(bound()).thumbnails_added == 3


def test_a_gallery_stamped_by_a_newer_revision_is_refused(tmp_path, make_set, store_of):
    from attrib.errors import GalleryError

    with Gallery(tmp_path / "g") as g:
        g.enroll("red", make_set("red", 2), bound())
    sql(store_of(tmp_path / "g"), "UPDATE alembic_version SET version_num = '0008'")
    with pytest.raises(GalleryError, match="newer attrib"):
        Gallery(tmp_path / "g")
