"""`attrib serve`: the HTTP API through FastAPI's test client, a real server process on 127.0.0.1, and
its OpenAPI schema fuzzed with schemathesis (no answer may be a server error)."""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

fastapi = pytest.importorskip("fastapi", reason="attrib serve needs the serve extra: pip install 'attrib[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from attrib.cli import cli  # noqa: E402
from attrib.gallery import Gallery  # noqa: E402
from attrib.host.manager import pm  # noqa: E402
from attrib.serve import ServeSettings, create_app  # noqa: E402

from conftest import make_images, register_plugin  # noqa: E402
from gallery_helpers import HERE, CohortColorMean, bound  # noqa: E402

PLUGIN = "test-serve-colormean"
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A gallery of red, green and blue (a colour-mean extractor with its own small cohort) and queries:
    2 red, 1 blue, 1 gray (never enrolled)."""
    root = tmp_path_factory.mktemp("serve")
    plugin = register_plugin(PLUGIN, CohortColorMean)
    try:
        with Gallery(root / "gallery") as gallery:
            for name in ("red", "green", "blue"):
                gallery.enroll(name, make_images(root / "enroll" / name, name, 6), bound())
        queries = [*make_images(root / "q", "red", 2, seed=5), *make_images(root / "q", "blue", 1, seed=6),
                   *make_images(root / "q", "gray", 1, seed=7)]
        yield root / "gallery", queries
    finally:
        pm.unregister(plugin)


@pytest.fixture
def own_gallery(served, tmp_path):
    """A copy of the served gallery that a test may write to."""
    return Path(shutil.copytree(served[0], tmp_path / "gallery"))


def client(gallery, **settings) -> TestClient:
    return TestClient(create_app(gallery, ServeSettings(**settings)))


def upload(*paths: Path) -> list[tuple]:
    return [("files", (p.name, p.read_bytes(), "image/png")) for p in paths]


def as_uploaded(record: dict) -> dict:
    """A library record as the server answers it: its path is the uploaded (base) name."""
    return {**record, "path": Path(record["path"]).name}


def cli_json(gallery, *args, expect=0, cwd=None) -> list[dict]:
    result = CliRunner().invoke(cli, ["--gallery", str(gallery), *map(str, args)], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


def png_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 90, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_identify_and_verify_answer_as_the_library(served):
    gallery, queries = served
    with Gallery(gallery, read_only=True) as g:
        expected = [as_uploaded(r.to_json()) for r in g.identify(queries, bound())]
        verified = [as_uploaded(r.to_json()) for r in g.verify("red", queries, bound())]
    with client(gallery) as http:
        identified = http.post("/v1/identify", files=upload(*queries))
        assert identified.status_code == 200, identified.text
        assert identified.json()["results"] == expected
        assert [r["decision"] for r in expected][:2] == ["red", "red"]
        answer = http.post("/v1/verify", files=upload(*queries), data={"generator": "red"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["results"] == verified
        assert [r["match"] for r in verified] == [True, True, False, False]
        listed = http.get("/v1/generators").json()["generators"]
        assert sorted(g["name"] for g in listed) == ["blue", "green", "red"]
        assert http.get("/v1/health").json()["extractor"] == bound().identity.key


def test_writes_need_the_token_then_enroll_identify_and_remove(own_gallery, tmp_path):
    gray = make_images(tmp_path / "gray", "gray", 6, seed=11)
    query = make_images(tmp_path / "query", "gray", 1, seed=12)
    with client(own_gallery) as http:
        refused = http.post("/v1/enroll", files=upload(*gray), data={"generator": "gray"})
        assert refused.status_code == 403 and "ATTRIB_TOKEN" in refused.json()["detail"]
        assert http.delete("/v1/generators/red").status_code == 403
    with client(own_gallery, token=TOKEN) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            answer = http.post("/v1/enroll", files=upload(*gray), data={"generator": "gray"}, headers=headers)
            assert answer.status_code in (401, 403), answer.text
        assert http.post("/v1/identify", files=upload(*query)).json()["results"][0]["decision"] != "gray"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        enrolled = http.post("/v1/enroll", files=upload(*gray), data={"generator": "gray", "family": "test"},
                             headers=auth)
        assert enrolled.status_code == 200, enrolled.text
        summary = enrolled.json()
        assert summary["added"] == [p.name for p in gray] and summary["failed"] == []
        again = http.post("/v1/enroll", files=upload(gray[0]), data={"generator": "gray"}, headers=auth).json()
        assert again["skipped"] == [{"path": gray[0].name, "reason": "already enrolled under 'gray'"}]
        assert http.post("/v1/identify", files=upload(*query)).json()["results"][0]["decision"] == "gray"
        removed = http.delete("/v1/generators/gray", headers=auth)
        assert removed.json() == {"removed": "gray", "samples": 6}
        assert http.delete("/v1/generators/gray", headers=auth).status_code == 404
        gone = http.post("/v1/verify", files=upload(*query), data={"generator": "gray"})
        assert gone.status_code == 404 and "'gray' is not enrolled" in gone.json()["detail"]


def test_reads_need_the_token_only_when_asked(served):
    gallery, queries = served
    with client(gallery, token=TOKEN, auth_reads=True) as http:
        for path in ("/v1/health", "/v1/generators"):
            assert http.get(path).status_code == 401
            assert http.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert http.post("/v1/identify", files=upload(queries[0])).status_code == 401
        answer = http.post("/v1/identify", files=upload(queries[0]), headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200


def test_request_and_pixel_limits_are_413(served):
    gallery, queries = served
    with client(gallery, max_request_bytes=4096) as http:
        answer = http.post("/v1/identify", files=upload(*queries))
        assert answer.status_code == 413 and "4,096-byte limit" in answer.json()["detail"]
    with client(gallery, max_image_pixels=100 * 100) as http:
        small = http.post("/v1/identify", files=[("files", ("ok.png", png_bytes(96, 80), "image/png"))])
        assert small.status_code == 200, small.text
        big = http.post("/v1/identify", files=[("files", ("big.png", png_bytes(120, 100), "image/png"))])
        assert big.status_code == 413
        assert big.json()["detail"].startswith("big.png: 120x100 pixels is over the 10,000-pixel limit")


def test_a_body_without_a_length_is_counted_as_it_arrives(served):
    """A chunked body (no Content-Length) over the limit is 413; one within it is answered as usual."""
    import httpx

    gallery, queries = served
    request = httpx.Request("POST", "http://127.0.0.1/v1/identify", files=upload(queries[0]))
    body, content_type = request.read(), request.headers["content-type"]
    for limit, status in ((len(body) - 1, 413), (len(body), 200)):
        with client(gallery, max_request_bytes=limit) as http:
            answer = http.post("/v1/identify", content=iter([body[:100], body[100:]]),
                               headers={"content-type": content_type})
            assert "content-length" not in answer.request.headers
            assert answer.status_code == status, answer.text
    assert answer.json()["results"][0]["path"] == queries[0].name


def test_a_bad_image_is_422_with_the_cli_line(served, tmp_path, monkeypatch):
    gallery, queries = served
    (tmp_path / "bad.png").write_bytes(b"this is not a picture")
    monkeypatch.chdir(tmp_path)
    line = cli_json(gallery, "identify", "--json", "bad.png", expect=1)[0]["error"]
    assert line.startswith("bad.png: ")
    with client(gallery) as http:
        files = [*upload(queries[0]), ("files", ("bad.png", b"this is not a picture", "image/png"))]
        answer = http.post("/v1/identify", files=files)
        assert answer.status_code == 422
        assert answer.json()["detail"] == line
        assert [r.get("error") for r in answer.json()["results"]] == [None, line]
        verify = http.post("/v1/verify", files=files[1:], data={"generator": "red"})
        assert verify.status_code == 422 and verify.json()["detail"] == line


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(process: subprocess.Popen, base: str, seconds: float = 60) -> None:
    """Wait until the `attrib serve` started as ``process`` answers GET /v1/health at ``base``."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, process.communicate()[1]
        try:
            if httpx.get(f"{base}/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"attrib serve did not answer /v1/health within {seconds:g} s"
        time.sleep(0.2)


def test_a_real_server_answers_as_the_cli(served):
    import httpx

    gallery, queries = served
    port = free_port()
    server = subprocess.Popen([sys.executable, str(HERE / "serve_script.py"), "--gallery", str(gallery), "serve",
                               "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(server, base)
        answer = httpx.post(f"{base}/v1/identify", files=upload(queries[2]), timeout=30)
        assert answer.status_code == 200, answer.text
        expected = cli_json(gallery, "identify", "--json", queries[2])
        assert answer.json()["results"] == [as_uploaded(r) for r in expected]
        assert httpx.get(f"{base}/docs", timeout=10).status_code == 200
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert "Traceback" not in err, err
    assert err.startswith(f"attrib serve: {base} (API description at {base}/docs)\n"), err  # the start-up summary
    assert "ready: extractor colormean@1" in err
    assert '"POST /v1/identify HTTP/1.1" 200' in out and '"GET /docs HTTP/1.1" 200' in out  # the access log


def test_the_openapi_schema_fuzzed_gives_no_server_error(own_gallery):
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    app = create_app(own_gallery, ServeSettings(token=TOKEN))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app):  # runs the app's start-up once
        for operation in schema.get_all_operations():
            strategy = operation.ok().as_strategy()

            @given(case=strategy)
            @settings(max_examples=20, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def fuzz(case):
                case.call_and_validate(headers=headers, checks=[not_a_server_error])

            fuzz()


def test_a_bad_setting_is_one_line_before_any_server_starts(served, monkeypatch):
    monkeypatch.setenv("ATTRIB_MAX_REQUEST_BYTES", "lots")
    result = CliRunner().invoke(cli, ["--gallery", str(served[0]), "serve"])
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: ATTRIB_MAX_REQUEST_BYTES='lots' must be a positive whole number "
                                     "(default 67108864)")


def test_the_cli_imports_no_web_framework_until_serve_runs():
    probe = ("import sys, attrib.cli; "
             "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'attrib.serve') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_the_extra_serve_says_what_to_install(served, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if uvicorn were not installed
    result = CliRunner().invoke(cli, ["--gallery", str(served[0]), "serve"])
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: attrib serve needs its extra (uvicorn is missing): "
                                     "pip install 'attrib[serve]'")


def test_an_empty_gallery_serves_and_says_so(served, tmp_path):
    with client(tmp_path / "new", extractor="colormean", token=TOKEN) as http:
        assert http.get("/v1/health").status_code == 200
        assert http.get("/v1/generators").json() == {"generators": []}
        answer = http.post("/v1/identify", files=upload(served[1][0]))
        assert answer.status_code == 409, answer.text
        assert "attrib enroll" in answer.json()["detail"]


def test_a_postgresql_gallery_is_enrolled_and_served_over_http(postgres_url, tmp_path, plugin):
    """The server on a gallery in PostgreSQL: enroll over HTTP (stored as upload:NAME), then identify as the
    CLI answers on the same URL, then remove."""
    plugin(CohortColorMean)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with Gallery(postgres_url) as gallery:  # the extractor and its cohort exist before the server binds them
        for seed, name in enumerate(("green", "blue"), start=30):
            gallery.enroll(name, make_images(tmp_path / name, name, 6, seed=seed), bound())
    red = make_images(tmp_path / "red", "red", 6, seed=32)
    query = make_images(tmp_path / "query", "red", 1, seed=33)
    with client(postgres_url, token=TOKEN) as http:
        enrolled = http.post("/v1/enroll", files=upload(*red), data={"generator": "red"}, headers=auth)
        assert enrolled.status_code == 200, enrolled.text
        assert enrolled.json()["added"] == [p.name for p in red]
        answer = http.post("/v1/identify", files=upload(*query))
        assert answer.status_code == 200, answer.text
        assert answer.json()["results"] == [as_uploaded(r) for r in cli_json(postgres_url, "identify", "--json", *query)]
        assert answer.json()["results"][0]["decision"] == "red"
        with Gallery(postgres_url) as gallery:
            assert {s["path"] for s in gallery.generator_detail("red")["samples"]} == {f"upload:{p.name}" for p in red}
        assert http.delete("/v1/generators/red", headers=auth).json() == {"removed": "red", "samples": 6}
        assert http.post("/v1/identify", files=upload(*query)).json()["results"][0]["decision"] != "red"
