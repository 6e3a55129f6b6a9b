"""`attrib serve` against hostile or careless clients: requests of many huge-by-header images, upload names
the file system cannot hold, names with a slash, slow and trickling clients, unauthenticated uploads, and
what the server says at start-up about what it serves (and a gallery that is not there)."""

from __future__ import annotations

import io
import socket
import sqlite3
import threading
import time
from contextlib import contextmanager

import pytest
from click.testing import CliRunner
from PIL import Image

pytest.importorskip("fastapi", reason="attrib serve needs the serve extra: pip install 'attrib[serve]'")
uvicorn = pytest.importorskip("uvicorn")

from attrib.cli import cli  # noqa: E402
from attrib.gallery import Gallery  # noqa: E402
from attrib.serve import ServeSettings, create_app  # noqa: E402
from attrib.serve import uploads as serve_uploads  # noqa: E402
from attrib.serve.slow_clients import PROTOCOL  # noqa: E402

from conftest import make_images  # noqa: E402
from test_serve import TOKEN, client, own_gallery, png_bytes, served, upload  # noqa: E402,F401

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SOCKET_WAIT = 10  # seconds a socket test waits for the server before it fails (the limits under test are 1 s)


def huge_blank_png(width: int, height: int) -> bytes:
    """A bilevel all-black PNG: a few KB on the wire, ``width * height`` pixels by its header."""
    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


# --- pixels per request -------------------------------------------------------------------------------

def test_twelve_images_just_under_the_image_limit_are_413_before_any_is_decoded(served, monkeypatch):
    """Twelve 8000x7999 PNGs (each under the 64 Mpx image limit, 768 Mpx together) would take gigabytes
    decoded: the request is refused from the headers, naming the limit and its setting, and nothing is
    decoded or held."""
    decoded = []
    real = serve_uploads.image_from_bytes
    monkeypatch.setattr(serve_uploads, "image_from_bytes", lambda *a, **k: decoded.append(a[0]) or real(*a, **k))
    data = huge_blank_png(8000, 7999)
    assert len(data) < 20_000
    with client(served[0]) as http:
        answer = http.post("/v1/identify", files=[("files", (f"z{i}.png", data, "image/png")) for i in range(12)])
        assert answer.status_code == 413, answer.text
        detail = answer.json()["detail"]
        assert "over the 64,000,000-pixel limit per request" in detail and "ATTRIB_MAX_REQUEST_PIXELS" in detail
        verify = http.post("/v1/verify", files=[("files", (f"z{i}.png", data, "image/png")) for i in range(2)],
                           data={"generator": "red"})
        assert verify.status_code == 413 and "ATTRIB_MAX_REQUEST_PIXELS" in verify.json()["detail"]
        assert http.app.state.service.pixels.used == 0
    assert decoded == []


def test_the_request_pixel_limit_counts_every_image_and_enroll_decodes_in_turn(own_gallery, tmp_path):
    """Within the limit a request is answered; one image more is 413. Enroll decodes its files one after
    another (the loader's own bound), so the request limit is not its."""
    image = png_bytes(96, 80)
    with client(own_gallery, token=TOKEN, max_request_pixels=3 * 96 * 80) as http:
        three = http.post("/v1/identify", files=[("files", (f"q{i}.png", image, "image/png")) for i in range(3)])
        assert three.status_code == 200, three.text
        assert len(three.json()["results"]) == 3
        four = http.post("/v1/identify", files=[("files", (f"q{i}.png", image, "image/png")) for i in range(4)])
        assert four.status_code == 413
        assert four.json()["detail"] == ("the 4 images of this request hold 30,720 pixels together, over the 23,040-pixel "
                                         "limit per request; send fewer or smaller images per request (the server's "
                                         "ATTRIB_MAX_REQUEST_PIXELS sets it)")
        gray = make_images(tmp_path / "gray", "gray", 6, seed=41)
        enrolled = http.post("/v1/enroll", files=upload(*gray), data={"generator": "gray"}, headers=AUTH)
        assert enrolled.status_code == 200, enrolled.text
        assert len(enrolled.json()["added"]) == 6


# --- names --------------------------------------------------------------------------------------------

def test_an_upload_name_too_long_for_a_file_is_enrolled_under_that_name(own_gallery, tmp_path):
    """A 250-character (750-byte) upload name is no file name the disk can hold: the upload is written under
    a short name of its own and answered, stored and reported under the name it was sent with."""
    gray = make_images(tmp_path / "gray", "gray", 3, seed=42)
    names = ["é" * 246 + ".png", "x" * 250, "a.b" * 80 + ".verylongextension"]
    files = [("files", (name, path.read_bytes(), "image/png")) for name, path in zip(names, gray)]
    with client(own_gallery, token=TOKEN) as http:
        answer = http.post("/v1/enroll", files=files, data={"generator": "gray"}, headers=AUTH)
        assert answer.status_code == 200, answer.text
        assert answer.json()["added"] == names
        broken = http.post("/v1/enroll", files=[("files", ("b" * 250 + ".png", b"not an image", "image/png"))],
                           data={"generator": "gray"}, headers=AUTH)
        assert broken.status_code == 422, broken.text
        failed = broken.json()["failed"]
        assert [f["path"] for f in failed] == ["b" * 250 + ".png"]
        assert failed[0]["error"].startswith("b" * 250 + ".png: ")
        assert broken.json()["detail"] == failed[0]["error"]
    with Gallery(own_gallery, read_only=True) as gallery:
        assert sorted(s["path"] for s in gallery.generator_detail("gray")["samples"]) == sorted(
            f"upload:{name}" for name in names)


def test_a_generator_whose_name_holds_a_slash_can_be_removed(own_gallery):
    """A name stored before the naming rule (here `a/b`) is removed with the slash encoded or as it is; a
    name the rule refuses is 400 at enroll, with the library's message."""
    with sqlite3.connect(own_gallery / "gallery.db") as db:
        db.execute("UPDATE generators SET name = 'a/b' WHERE name = 'blue'")
        db.execute("UPDATE generators SET name = 'c/d/e' WHERE name = 'green'")
    with client(own_gallery, token=TOKEN) as http:
        assert {g["name"] for g in http.get("/v1/generators").json()["generators"]} == {"a/b", "c/d/e", "red"}
        removed = http.delete("/v1/generators/a%2Fb", headers=AUTH)
        assert removed.status_code == 200, removed.text
        assert removed.json() == {"removed": "a/b", "samples": 6}
        assert http.delete("/v1/generators/c/d/e", headers=AUTH).json() == {"removed": "c/d/e", "samples": 6}
        assert http.delete("/v1/generators/a%2Fb", headers=AUTH).status_code == 404
        refused = http.post("/v1/enroll", files=upload(*make_images(own_gallery.parent / "x", "gray", 1, seed=3)),
                            data={"generator": "x/y"}, headers=AUTH)
        assert refused.status_code == 400, refused.text
        assert "'x/y'" in refused.json()["detail"] and "not allowed" in refused.json()["detail"]


# --- who may call what --------------------------------------------------------------------------------

@pytest.mark.parametrize("auth_reads", [False, True])
def test_the_openapi_description_asks_the_token_only_where_it_is_needed(served, auth_reads):
    with client(served[0], token=TOKEN, auth_reads=auth_reads) as http:
        paths = http.get("/openapi.json").json()["paths"]
    secured = {(method.upper(), path) for path, methods in paths.items() for method, operation in methods.items()
               if operation.get("security")}
    writes = {("POST", "/v1/enroll"), ("DELETE", "/v1/generators/{name}")}
    reads = {("POST", "/v1/identify"), ("POST", "/v1/verify"), ("GET", "/v1/generators"), ("GET", "/v1/health")}
    assert secured == (writes | reads if auth_reads else writes)


@contextmanager
def live_server(gallery, monkeypatch, **settings):
    """A real uvicorn server on 127.0.0.1 (in a thread, with the protocol `attrib serve` runs), its read
    timeout 1 s: yields its (host, port)."""
    monkeypatch.setenv("ATTRIB_READ_TIMEOUT", "1")
    app = create_app(gallery, ServeSettings(read_timeout=1, **settings))
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, http=PROTOCOL, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield listening.getsockname()
    finally:
        server.should_exit = True
        thread.join(30)
        listening.close()


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or SOCKET_WAIT passes: the test fails)."""
    sock.settimeout(SOCKET_WAIT)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_a_body_trickling_in_is_408_and_its_connection_closed(served, monkeypatch):
    """A client sending its body a byte every 0.1 s (1,000 bytes declared) is answered 408 once the read
    timeout (1 s here) passes, and the connection is closed."""
    with live_server(served[0], monkeypatch) as address, socket.create_connection(address) as sock:
        sock.sendall(b"POST /v1/identify HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: 1000\r\n\r\n"
                     b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n\r\n')
        began, sent = time.monotonic(), 0
        while time.monotonic() - began < SOCKET_WAIT:
            if socket_readable(sock, 0.1):
                break
            sock.sendall(b"x")
            sent += 1
        waited = time.monotonic() - began
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"connection: close" in answer.lower()
    assert b"ATTRIB_READ_TIMEOUT" in answer and b"ATTRIB_MIN_BODY_RATE" in answer
    assert sent >= 1 and waited >= 0.9  # the bytes it sent did not count as progress enough: refused at the timeout


def test_headers_trickling_in_have_their_connection_closed(served, monkeypatch):
    """A client that never finishes its headers (a byte every 0.1 s) has its connection closed after the
    read timeout, and so does one that keeps a connection open without sending a request."""
    with live_server(served[0], monkeypatch) as address:
        with socket.create_connection(address) as sock:
            sock.sendall(b"GET /v1/health HTTP/1.1\r\n")
            began, closed = time.monotonic(), False
            while time.monotonic() - began < SOCKET_WAIT and not closed:
                closed = socket_readable(sock, 0.1) and sock.recv(1024) == b""
                if not closed:
                    sock.sendall(b"X")
            assert closed, "the server kept a connection whose headers never ended"
        with socket.create_connection(address) as sock:
            assert read_answer(sock) == b""
        with socket.create_connection(address) as sock:  # a prompt client is answered as usual
            sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert read_answer(sock).startswith(b"HTTP/1.1 200 ")


def test_an_upload_without_the_token_is_refused_before_its_body_is_sent(own_gallery, monkeypatch):
    """A 60 MB enroll without the token is answered 401 from its headers: the client has sent no byte of
    the body. Without any token set, 403 likewise."""
    head = (b"POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 60000000\r\n")
    with live_server(own_gallery, monkeypatch, token=TOKEN) as address:
        for extra, status in ((b"", b"401"), (b"Authorization: Bearer wrong\r\n", b"401")):
            with socket.create_connection(address) as sock:
                sock.sendall(head + extra + b"\r\n")
                answer = one_answer(sock)
            assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer[:200]
            assert b"www-authenticate: bearer" in answer.lower() and b"bearer token" in answer
        with socket.create_connection(address) as sock:  # a write without a body likewise
            sock.sendall(b"DELETE /v1/generators/red HTTP/1.1\r\nHost: x\r\n\r\n")
            assert one_answer(sock).startswith(b"HTTP/1.1 401 ")
    with live_server(own_gallery, monkeypatch) as address, socket.create_connection(address) as sock:
        sock.sendall(head + b"Authorization: Bearer anything\r\n\r\n")
        answer = one_answer(sock)
        assert answer.startswith(b"HTTP/1.1 403 ") and b"ATTRIB_TOKEN" in answer


def one_answer(sock: socket.socket) -> bytes:
    """One whole answer (headers and the body its Content-Length gives), the connection left open."""
    sock.settimeout(SOCKET_WAIT)
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536) or pytest.fail(f"the server closed the connection: {received!r}")
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536) or pytest.fail(f"the server closed the connection: {received + body!r}")
    return head + b"\r\n\r\n" + body


def socket_readable(sock: socket.socket, seconds: float) -> bool:
    import select

    return bool(select.select([sock], [], [], seconds)[0])


# --- start-up -----------------------------------------------------------------------------------------

@pytest.fixture
def serve_environment(monkeypatch):
    """`attrib serve` hands its settings to the workers through the environment: restored afterwards."""
    for name in ("ATTRIB_GALLERY", "ATTRIB_AUTH_READS", "ATTRIB_EXTRACTOR", "ATTRIB_UPLOADS_DIR", "ATTRIB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_missing_gallery_is_refused_unless_asked_to_create_it(tmp_path, serve_environment):
    monkeypatch = serve_environment
    started = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.append(kwargs))
    missing = tmp_path / "galery"
    result = CliRunner().invoke(cli, ["--gallery", str(missing), "serve"])
    assert result.exit_code == 1 and started == []
    assert result.output.strip() == (f"Error: no gallery at {missing} (no gallery.db there): check --gallery (or "
                                     "ATTRIB_GALLERY), or add --create to serve a new, empty gallery there")
    assert not missing.exists()
    result = CliRunner().invoke(cli, ["--gallery", str(missing), "serve", "--create"])
    assert result.exit_code == 0, result.output
    assert (missing / "gallery.db").is_file() and len(started) == 1


def test_the_start_up_summary_says_what_is_served_and_how(served, serve_environment):
    monkeypatch = serve_environment
    started = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.append(kwargs))
    monkeypatch.setenv("ATTRIB_TOKEN", TOKEN)
    monkeypatch.setenv("ATTRIB_MAX_REQUEST_PIXELS", "1000000")
    result = CliRunner().invoke(cli, ["--gallery", str(served[0]), "serve", "--port", "8123"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "attrib serve: http://127.0.0.1:8123 (API description at http://127.0.0.1:8123/docs)"
    text = result.output
    assert f"gallery:    {served[0]} (3 generators)" in text
    assert "extractor:  colormean (the gallery's only one)" in text
    assert "writes:     need `Authorization: Bearer $ATTRIB_TOKEN`; reads: open" in text
    assert "1,000,000 per identify or verify request" in text and "67,108,864 bytes per request" in text
    assert "access log: one line per request on standard output" in text
    assert TOKEN not in text
    (kwargs,) = started
    assert kwargs["http"] == PROTOCOL and kwargs["access_log"] is True
    assert kwargs["log_config"]["loggers"]["uvicorn.access"]["level"] == "INFO"
    assert kwargs["log_config"]["loggers"]["attrib.serve"]["level"] == "INFO"
    quiet = CliRunner().invoke(cli, ["--gallery", str(served[0]), "serve", "--no-access-log"])
    assert "access log: off" in quiet.output and started[-1]["access_log"] is False
