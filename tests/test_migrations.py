"""Schema migrations through Alembic on both backends: a new database gets the baseline (schema 5, the
models' tables exactly), SQLite galleries written before Alembic are brought forward and stamped, a
current gallery opens without importing Alembic, and a newer one is refused in one line."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from attrib.errors import GalleryError
from attrib.gallery import Gallery
from attrib.storage import models as db
from attrib.storage.schema import HEAD_REVISION, SCHEMA_VERSION

from gallery_helpers import bound, read_only_view, run_in_process


def stamp_and_version(store) -> tuple[str, int]:
    with store.engine.connect() as connection:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        version = connection.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar()
    return revision, int(version)


def test_the_head_revision_is_the_one_the_code_expects():
    from attrib.storage.migrations import head

    assert head() == HEAD_REVISION


def test_a_new_database_gets_the_baseline_with_exactly_the_models_tables(gallery_location, store_of):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    Gallery(gallery_location).close()
    store = store_of(gallery_location)
    assert stamp_and_version(store) == (HEAD_REVISION, SCHEMA_VERSION)
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), db.Base.metadata)
    assert differences == []


def build_old_gallery(folder, version: int) -> None:
    """An SQLite gallery as attrib wrote it at schema ``version`` (1-5), before Alembic."""
    folder.mkdir()
    engine = create_engine(f"sqlite:///{folder / 'gallery.db'}")
    with engine.begin() as connection:
        for step in range(1, version + 1):
            db.MIGRATIONS[step](connection)
        with Session(bind=connection) as session:
            session.add(db.Meta(key="schema_version", value=str(version)))
            session.flush()
    engine.dispose()


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5])
def test_a_gallery_written_before_alembic_is_brought_forward_and_stamped(tmp_path, make_set, store_of, version):
    build_old_gallery(tmp_path / "g", version)
    with Gallery(tmp_path / "g") as g:
        store = store_of(tmp_path / "g")  # opened after the gallery, which migrated the database
        assert stamp_and_version(store) == (HEAD_REVISION, SCHEMA_VERSION)
        assert len(g.enroll("red", make_set("red", 4), bound()).added) == 4
        assert store.revision(store.extractor_id("colormean@1")) == 4  # the revision triggers are in place
        assert g.check().consistent


def test_a_current_gallery_opens_without_importing_alembic(gallery_location, tmp_path, make_set):
    with Gallery(gallery_location) as g:
        g.enroll("red", make_set("red", 4), bound())
    build_old_gallery(tmp_path / "old", 4)
    probe = ("from attrib.gallery import Gallery\n"
             "with Gallery(sys.argv[1]) as g:\n    g.generators()\n"
             "print('alembic' in sys.modules, 'alembic.command' in sys.modules)\n")
    outputs = []
    for location in (gallery_location, str(tmp_path / "old")):
        process = run_in_process(probe, location)
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outputs.append(out.strip())
    assert outputs == ["False False", "True True"]  # the second one needed migrating


def test_a_gallery_migrated_by_a_newer_attrib_is_refused_in_one_line(gallery_location, store_of):
    with Gallery(gallery_location) as g:
        shown = str(g.root)
    with store_of(gallery_location).engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(GalleryError) as info:
        Gallery(gallery_location)
    message = str(info.value)
    assert message.startswith(f"gallery {shown} was migrated by a newer attrib") and "upgrade attrib" in message
    assert "\n" not in message


def test_an_unstamped_current_gallery_still_opens_where_it_cannot_be_written(tmp_path, make_set, store_of):
    with Gallery(tmp_path / "g") as g:
        g.enroll("red", make_set("red", 4), bound())
        g.enroll("blue", make_set("blue", 4), bound())
    connection = sqlite3.connect(tmp_path / "g" / "gallery.db")
    connection.execute("DROP TABLE alembic_version")
    connection.commit()
    connection.close()
    query = make_set("red", 1, seed=5)
    with read_only_view(tmp_path / "g") as view:
        with Gallery(view) as g:
            assert [r.to_json()["nearest"] for r in g.identify(query, bound())] == ["red"]
    Gallery(tmp_path / "g").close()  # the next writer stamps it
    assert stamp_and_version(store_of(tmp_path / "g")) == (HEAD_REVISION, SCHEMA_VERSION)
