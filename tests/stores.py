"""Test databases: SQLite always; PostgreSQL when CANDOR_TEST_POSTGRES_URL names a server
(`.ci/run` starts one); a Redis server started by the test when redis-server is installed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid

import pytest
from sqlalchemy import create_engine, text


def backends() -> list:
    params = ["sqlite"]
    params.append(pytest.param("postgresql", marks=pytest.mark.skipif(
        not os.environ.get("CANDOR_TEST_POSTGRES_URL"), reason="no PostgreSQL configured (CANDOR_TEST_POSTGRES_URL)")))
    return params


def fresh_url(kind: str, tmp_path) -> tuple[str, callable]:
    """A new, empty database of that kind, and a function that drops it."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}", lambda: None
    admin_url = os.environ["CANDOR_TEST_POSTGRES_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    name = "candor_t_" + uuid.uuid4().hex[:10]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + "/" + name

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)
