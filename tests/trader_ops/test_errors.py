"""Bad input ends in one line and an exit code, never a traceback (the real CLI in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from stratforge.trader.markets.replay import write_session
from stratforge.trader.markets.synthetic import SyntheticConfig, generate_session
from stratforge.trader.model import init_phase5
from trader_ops.clob_v2 import FakeClobV2, Market
from trader_ops.httpserver import LocalServer


def cli(*args: str, env: dict[str, str] | None = None, pre: str = "") -> subprocess.CompletedProcess:
    """``stratforge trader ARGS``; ``pre`` is Python run first (e.g. to hide an installed package)."""
    code = f"{pre}\nimport sys\nfrom stratforge.cli import main\nsys.argv = ['stratforge', 'trader', *sys.argv[1:]]\nsys.exit(main())"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("POLY", "POLYMARKET"))}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=base | (env or {}),
        timeout=300,
    )


def one_line_error(res: subprocess.CompletedProcess, *needles: str) -> str:
    out = (res.stdout + res.stderr).strip()
    assert res.returncode == 2, out
    assert "Traceback" not in out, out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out
    for n in needles:
        assert n in lines[0], out
    return lines[0]


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corrupt")
    model = root / "model"
    init_phase5(0).save(model)
    weights = model / "rl_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # a truncated download
    replay = root / "r.jsonl"
    write_session(generate_session(1, SyntheticConfig(n_windows=1, assets=("BTC",))), replay)
    return {"model": model, "replay": replay, "root": root}


@pytest.mark.parametrize("command", ["run", "backtest", "eval"])
def test_corrupt_model_file(corrupt: dict[str, Path], command: str, tmp_path: Path) -> None:
    m, r = str(corrupt["model"]), str(corrupt["replay"])
    args = {
        "run": ["run", "--replay", r, "--model", m, "--data-dir", str(tmp_path)],
        "backtest": ["backtest", r, "--policy", m],
        "eval": ["eval", "--model", m, "--episodes", "2", "--out", str(tmp_path)],
    }[command]
    one_line_error(cli(*args), "rl_model.safetensors", "not a readable safetensors file")


def test_live_without_the_extra(tmp_path: Path) -> None:
    env = {"POLYMARKET_PRIVATE_KEY": Account.create().key.hex()}
    res = cli(
        "run", "--mode", "live", "--i-understand-live-trading", "--data-dir", str(tmp_path),
        env=env, pre="import sys; sys.modules['py_clob_client_v2'] = None",
    )  # fmt: skip
    one_line_error(res, "pip install 'stratforge[live]'")


def test_live_with_bad_credentials(tmp_path: Path) -> None:
    key = Account.create().key.hex()
    secret = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"
    clob = FakeClobV2([Market("0xc", "1", "2", "btc-updown-15m-0")])  # rejects unknown API keys
    with LocalServer(clob) as srv:
        env = {
            "POLYMARKET_PRIVATE_KEY": key,
            "POLYMARKET_CLOB_URL": srv.url,
            "POLY_API_KEY": "not-the-key",
            "POLY_API_SECRET": secret,
            "POLY_API_PASSPHRASE": "nope",
        }
        res = cli(
            "run", "--mode", "live", "--i-understand-live-trading", "--data-dir", str(tmp_path), env=env
        )
    line = one_line_error(res, "rejected the API credentials (HTTP 401)")
    out = res.stdout + res.stderr
    assert (
        key not in out
        and key.removeprefix("0x") not in out
        and secret not in out
        and "not-the-key" not in out
    )
    assert "error:" in line


def test_live_with_an_invalid_key(tmp_path: Path) -> None:
    bogus = "0x" + "zz" * 32
    res = cli(
        "run", "--mode", "live", "--i-understand-live-trading", "--data-dir", str(tmp_path),
        env={"POLYMARKET_PRIVATE_KEY": bogus},
    )  # fmt: skip
    one_line_error(res, "not a valid private key")
    assert bogus not in res.stdout + res.stderr
