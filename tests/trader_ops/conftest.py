"""Shared fixtures: a throw-away PostgreSQL cluster started from the Debian binaries."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL server on 127.0.0.1 (skipped if the binaries are absent)."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL binaries not installed (run scripts/install-system-deps.sh)")
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:
        # initdb refuses to run as root: run the cluster as the postgres (or nobody) account.
        for name in ("postgres", "nobody"):
            try:
                owner = pwd.getpwnam(name)
                break
            except KeyError:
                continue
        if owner is None or shutil.which("runuser") is None:
            pytest.skip("running as root without a postgres account or runuser")
        prefix = ["runuser", "-u", owner.pw_name, "--"]
    tmp = Path(tempfile.mkdtemp(prefix="sf-pg-"))
    data = tmp / "data"
    if owner is not None:
        os.chown(tmp, owner.pw_uid, owner.pw_gid)
    port = free_port()
    subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"],
        check=True,
        capture_output=True,
    )
    opts = f"-h 127.0.0.1 -p {port} -k {tmp} -F"
    subprocess.run(
        [
            *prefix,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            str(tmp / "log"),
            "-w",
            "-t",
            "300",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        deadline = time.time() + 600  # pg_ctl -w already waited; this only covers a slow socket bind
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(tmp, ignore_errors=True)
