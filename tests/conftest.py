"""Shared fixtures. Installed third-party plugins are never autoloaded in tests."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from PIL import Image

sys._called_from_test = True  # attrib.host.manager skips entry points under test

from attrib import hookimpl  # noqa: E402
from attrib.host.manager import pm  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _originals_only():
    """Galleries made by tests (module-scoped fixtures and subprocesses included) hold no delivery versions
    (each version embeds the impostor cohort once more), as a gallery enrolled with ``--versions none``,
    unless the test takes ``delivery_ladder``; the versions are tested in tests/test_delivery_versions.py."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ATTRIB_DELIVERY_LADDER", "none")
        yield


@pytest.fixture
def delivery_ladder(monkeypatch):
    """The default delivery ladder, as a user's gallery gets it."""
    monkeypatch.delenv("ATTRIB_DELIVERY_LADDER", raising=False)


class ColorMean:
    """Test extractor: per-channel mean and std, centred; separates colour-cast images."""

    name = "colormean"
    version = "1"
    dim = 6

    def __init__(self, **options):
        self.options = options

    def embed_batch(self, images):
        rows = []
        for im in images:
            flat = im.reshape(-1, 3).astype(np.float32)
            rows.append(np.concatenate([flat.mean(0) - 127.5, flat.std(0) - 40.0]))
        return np.stack(rows).astype(np.float32)


class ColorPercentiles:
    """A second test extractor, for fusion: per-channel 25th and 75th percentiles, centred."""

    name = "colorpct"
    version = "1"
    dim = 6

    def __init__(self, **options):
        pass

    def embed_batch(self, images):
        rows = [np.percentile(im.reshape(-1, 3), [25, 75], axis=0).ravel() - 127.5 for im in images]
        return np.stack(rows).astype(np.float32)


def register_plugin(name: str, *classes):
    module = types.ModuleType(name)

    @hookimpl
    def register_extractors(register):
        for cls in classes:
            register(cls)

    module.register_extractors = register_extractors
    pm.register(module, name=name)
    return module


@pytest.fixture
def plugin():
    """Register extractor classes as a throwaway plugin; unregistered afterwards."""
    registered = []

    def add(*classes, name=None):
        module = register_plugin(name or f"test-plugin-{len(registered)}", *classes)
        registered.append(module)
        return module

    try:
        yield add
    finally:
        for module in registered:
            pm.unregister(module)


@pytest.fixture
def colormean(plugin):
    plugin(ColorMean, name="test-colormean")
    return ColorMean


@pytest.fixture
def store_of():
    """``store_of(location)``: the SQL store of the gallery at ``location`` (its folder, or its PostgreSQL
    URL), opened with :func:`attrib.storage.opening.open_store` for a test's direct reads and writes. A
    store on SQLite sees what was committed before each of its reads. Every store opened is closed at the
    end of the test."""
    from attrib.storage.opening import open_store

    opened = []

    def open_(location, **options):
        store = open_store(location, **options)
        opened.append(store)
        return store

    try:
        yield open_
    finally:
        for store in opened:
            store.close()


CASTS = {"red": (200, 60, 60), "green": (60, 200, 60), "blue": (60, 60, 200), "gray": (128, 128, 128)}


def make_images(folder, generator: str, n: int, size=(96, 80), seed: int = 0, fmt="png"):
    """Write n noisy images with the colour cast of ``generator`` (a key of CASTS)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        base = np.array(CASTS[generator], dtype=np.float32)
        arr = np.clip(rng.normal(base, 25, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
        path = folder / f"{generator}_{seed}_{i}.{fmt}"
        Image.fromarray(arr).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def make_set(tmp_path):
    def make(generator, n, seed=0, **kw):
        return make_images(tmp_path / "data" / f"{generator}-{seed}", generator, n, seed=seed, **kw)

    return make


# -- a throwaway PostgreSQL server for the storage tests ----------------------------------------------

PG_PASSWORD = "s3cret-pw"  # of the role the tests connect as; must never show in a message


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A PostgreSQL server of Debian's binaries in a temporary folder: a unix socket in that folder and
    127.0.0.1 on a free port; role ``attrib`` (password PG_PASSWORD over TCP, trusted on the socket)."""

    def __init__(self, bindir, folder):
        self.bindir, self.folder, self.port = bindir, folder, _free_port()
        self.data = folder / "data"
        self._databases = 0

    def _run(self, *command):
        import os
        import subprocess

        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *map(str, command)], check=True, capture_output=True, text=True, timeout=120)

    def start(self):
        self._run(self.bindir / "initdb", "-D", self.data, "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8")
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-l", self.folder / "server.log", "-w", "-o",
                  f"-k {self.folder} -p {self.port} -c listen_addresses=127.0.0.1 -F", "start")
        self.admin(f"CREATE ROLE attrib LOGIN CREATEDB PASSWORD '{PG_PASSWORD}'")

    def stop(self):
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def admin(self, statement: str):
        import psycopg

        with psycopg.connect(host=str(self.folder), port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(statement)

    def new_database(self) -> str:
        self._databases += 1
        name = f"gallery_{self._databases}"
        self.admin(f"CREATE DATABASE {name} OWNER attrib")
        return name

    def socket_url(self, database: str) -> str:
        return f"postgresql://attrib@/{database}?host={self.folder}&port={self.port}"

    def tcp_url(self, database: str, password: str = PG_PASSWORD) -> str:
        return f"postgresql://attrib:{password}@127.0.0.1:{self.port}/{database}"


def _postgres_bindir():
    import glob
    import os
    import pwd
    from pathlib import Path

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        return None, ("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb): install them with "
                      "`apt-get install postgresql` to run the PostgreSQL tests")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return None, "running as root without a postgres user to run initdb as: `apt-get install postgresql`"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return None, "psycopg is not installed: pip install 'psycopg[binary]' (the dev extra has it)"
    return Path(found[-1]).parent, ""


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the test session, stopped (and its folder removed) at the end."""
    import os
    import pwd
    import shutil
    import tempfile
    from pathlib import Path

    bindir, why = _postgres_bindir()
    if bindir is None:
        pytest.skip(why)
    folder = Path(tempfile.mkdtemp(prefix="attrib-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        os.chown(folder, pwd.getpwnam("postgres").pw_uid, -1)
    server = PostgresServer(bindir, folder)
    try:
        server.start()
    except Exception as exc:
        log = folder / "server.log"
        shutil.rmtree(folder, ignore_errors=True)
        detail = getattr(exc, "stderr", "") or (log.read_text() if log.exists() else "")
        pytest.fail(f"could not start the test PostgreSQL server: {exc} {detail}")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server, tmp_path, monkeypatch):
    """The URL of a new, empty database of its own (over the server's unix socket); index files go to a
    cache folder of this test (ATTRIB_CACHE_DIR)."""
    monkeypatch.setenv("ATTRIB_CACHE_DIR", str(tmp_path / "cache"))
    return postgres_server.socket_url(postgres_server.new_database())


@pytest.fixture(params=["sqlite", "postgresql"])
def gallery_location(request, tmp_path):
    """Where a gallery of this test lives, once for each backend: a folder, or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "g")
    return request.getfixturevalue("postgres_url")
