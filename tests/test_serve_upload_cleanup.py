"""The worker's upload folder (``attrib-upload-*`` in the temporary folder) is removed whatever runs the
app: start-ups that overlap on one app (a test client inside another, as schemathesis's ASGI client
does) share one worker, closed by the last to end; an app whose start-up never runs (mounted in another
app) has its folder removed when the process exits. Other tests may make and remove such folders at the
same time, so each test looks only at the folders it made."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="attrib serve needs the serve extra: pip install 'attrib[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from attrib.serve import ServeSettings, create_app  # noqa: E402
from attrib.serve.uploads import PREFIX  # noqa: E402

from gallery_helpers import run_in_process  # noqa: E402
from test_serve import served, upload  # noqa: E402,F401

MOUNTED = """
import serve_script  # registers the test extractor
from fastapi import FastAPI
from fastapi.testclient import TestClient
from attrib.serve import create_app

app, outer = create_app(sys.argv[1]), FastAPI()
outer.mount("/attrib", app)
with TestClient(outer) as http:  # the outer app's start-up runs; the mounted app's never does
    assert http.get("/attrib/v1/health").status_code == 200
    print(app.state.service.uploads.path)
"""


def upload_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob(f"{PREFIX}*"))


def test_overlapping_start_ups_share_one_worker_and_leave_no_upload_folder(served):
    gallery, queries = served
    before = upload_folders()
    app = create_app(gallery, ServeSettings())
    with TestClient(app) as outer:
        with TestClient(app) as inner:
            assert inner.post("/v1/identify", files=upload(queries[0])).status_code == 200
        folder = app.state.service.uploads.path
        assert folder.is_dir()  # the outer start-up still runs: its worker is not closed
        answer = outer.post("/v1/identify", files=upload(queries[0]))
        assert answer.status_code == 200, answer.text
        assert upload_folders() - before == {folder}
    assert upload_folders() - before == set()


def test_a_restarted_app_gets_a_new_worker_and_leaves_no_upload_folder(served):
    gallery, queries = served
    before = upload_folders()
    app = create_app(gallery, ServeSettings())
    for _ in range(2):
        with TestClient(app) as http:
            answer = http.post("/v1/identify", files=upload(queries[0]))
            assert answer.status_code == 200, answer.text
    assert upload_folders() - before == set()


def test_a_mounted_app_removes_its_upload_folder_when_the_process_exits(served):
    before = upload_folders()
    process = run_in_process(MOUNTED, str(served[0]))
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    folder = Path(out.strip())
    assert folder.name.startswith(PREFIX)
    assert not folder.exists()
    assert upload_folders() - before == set()
