"""Deployment files stay consistent: the health check path/port and the entry point's arguments."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_fly_health_check_matches_container() -> None:
    fly = tomllib.loads((ROOT / "fly.toml").read_text())
    svc = fly["http_service"]
    assert svc["internal_port"] == int(fly["env"]["HEALTH_PORT"])
    assert [c["path"] for c in svc["checks"]] == ["/health"]
    assert fly["env"]["TRADING_MODE"] == "paper"
    docker = (ROOT / "Dockerfile").read_text()
    assert docker.startswith("# ") and "FROM python:3.11-slim" in docker
    assert re.search(
        r"HEALTHCHECK .*\n\s+CMD curl -fsS \"http://127.0.0.1:\$\{HEALTH_PORT\}/health\"", docker
    )
    assert '".[trader,postgres,live]"' in docker


def _entry(tmp_path: Path, **env: str) -> list[str]:
    fake = tmp_path / "stratforge"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    fake.chmod(0o755)
    full = {"PATH": f"{tmp_path}:{os.environ['PATH']}", **env}
    out = subprocess.run(
        ["sh", str(ROOT / "scripts/docker-entrypoint.sh")], env=full, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_entrypoint_paper_by_default(tmp_path: Path) -> None:
    args = _entry(tmp_path, REPLAY="/data/r.jsonl")
    assert args[:4] == ["trader", "run", "--mode", "paper"]
    assert "--replay" in args and "--i-understand-live-trading" not in args


def test_entrypoint_live_needs_explicit_confirmation(tmp_path: Path) -> None:
    assert "--i-understand-live-trading" not in _entry(tmp_path, TRADING_MODE="live")
    args = _entry(tmp_path, TRADING_MODE="live", LIVE_CONFIRM="yes", MODEL="phase5")
    assert "--i-understand-live-trading" in args and args[args.index("--model") + 1] == "phase5"
