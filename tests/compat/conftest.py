"""Starts the eddy binary given in EDDY_BIN on a free loopback port with a temporary data
directory, once per test session, and hands tests a client of the official Meilisearch
Python library pointed at it."""

import os
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import meilisearch
import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "meilisearch"
MASTER_KEY = "compat-suite-master-key-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server():
    binary = os.environ.get("EDDY_BIN")
    if not binary:
        pytest.fail("EDDY_BIN must name the eddy binary (scripts/compat sets it)")
    tmp = tempfile.TemporaryDirectory(prefix="eddy-compat-")
    port = _free_port()
    log = open(Path(tmp.name) / "eddy.log", "wb")
    proc = subprocess.Popen(
        [binary, "serve", "--http-addr", f"127.0.0.1:{port}", "--db-path",
         str(Path(tmp.name) / "db"), "--master-key", MASTER_KEY],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.time() > deadline:
            log.flush()
            pytest.fail("eddy did not start: " + (Path(tmp.name) / "eddy.log").read_text())
        time.sleep(0.05)
    yield url
    proc.terminate()
    code = proc.wait(timeout=60)
    log.close()
    assert code == 0, "eddy did not exit cleanly on SIGTERM"
    tmp.cleanup()


@pytest.fixture(scope="session")
def client(server):
    return meilisearch.Client(server, MASTER_KEY)


@pytest.fixture
def index_uid():
    return "t_" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def movies():
    import json
    return json.loads((DATA / "small_movies.json").read_text())


@pytest.fixture(scope="session")
def data_dir():
    return DATA
