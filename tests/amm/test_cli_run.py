"""`stratforge amm run` as a user calls it: a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def stratforge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stratforge.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_run_prints_the_edge_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    proc = stratforge(
        "amm", "run", "--fee-bps", "50", "--simulations", "10", "--workers", "2", "--json", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    assert "Edge: 392.08" in proc.stdout
    payload = json.loads(out.read_text())
    assert round(payload["summary"]["mean_edge"], 2) == 392.08
    assert [s["seed"] for s in payload["simulations"]] == list(range(10))


def test_seed_start_and_fixed_spec() -> None:
    proc = stratforge("amm", "run", "fixed:55", "-n", "3", "--seed-start", "7", "-w", "1")
    assert proc.returncode == 0, proc.stderr
    assert "seeds 7..9" in proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("amm", "run", "--simulations", "-5"),
        ("amm", "run", "--fee-bps", "1500", "-n", "1"),
        ("amm", "run", "--unknown-option"),
        ("amm", "run", "-n", "1", "--workers", "0"),
        ("amm", "run", "missing.sol"),
        ("amm", "run", "fixed:abc"),
    ],
)
def test_bad_input_is_a_one_line_error(args: tuple[str, ...]) -> None:
    proc = stratforge(*args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:")
