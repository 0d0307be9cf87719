"""Operations CLI: model registry (import/promote/rollback/ab), live-mode gate, kill switch, redaction."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from stratforge.trader.cli import app
from stratforge.trader.markets.replay import write_session
from stratforge.trader.markets.synthetic import SyntheticConfig, generate_session
from stratforge.trader.model import init_feedforward, init_phase5
from stratforge.trader.redaction import RedactSecrets
from stratforge.trader.registry import Registry, paired_ci, sha256
from stratforge.trader.storage import Store

runner = CliRunner()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    a, b = root / "p5", root / "ff"
    init_phase5(0).save(a)
    init_feedforward(1).save(b)
    replay = root / "small.jsonl"
    write_session(generate_session(5, SyntheticConfig(n_windows=1, assets=("BTC", "ETH"))), replay)
    return {"a": a, "b": b, "replay": replay}


def _run(*args: str):
    return runner.invoke(app, list(args))


def test_registry_import_promote_rollback(models: dict[str, Path], tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    assert _run("models", "import", str(models["a"]), "--name", "phase5", *d).exit_code == 0
    assert _run("models", "import", str(models["b"]), "--name", "ff", *d).exit_code == 0
    dup = _run("models", "import", str(models["a"]), *d)
    assert dup.exit_code == 2 and "already imported as 'phase5'" in dup.output
    assert _run("models", "rollback", *d).exit_code == 2  # nothing active yet
    assert _run("models", "promote", "ff", *d).exit_code == 0
    assert _run("models", "promote", "phase5", *d).exit_code == 0
    reg = Registry(Store(data_dir=tmp_path), tmp_path)
    assert reg.active().name == "phase5"
    # The stored copies are byte-identical backups with recorded hashes.
    v = reg.get("ff")
    assert v.weights_sha256 == sha256(models["b"] / "rl_model.safetensors")
    r = _run("models", "rollback", *d)
    assert r.exit_code == 0 and "phase5 -> ff" in r.output
    assert reg.active().name == "ff" and reg.get("phase5").status == "retired"
    listing = _run("models", "list", *d).output
    assert "ff" in listing and "active" in listing and "retired" in listing
    # A tampered backup is refused instead of being run.
    (Path(reg.get("phase5").stored_path) / "rl_model.safetensors").write_bytes(b"garbage")
    bad = _run("models", "promote", "phase5", *d)
    assert bad.exit_code == 2 and "hash mismatch" in bad.output


def test_ab_reports_difference_with_ci(models: dict[str, Path], tmp_path: Path) -> None:
    r = _run("models", "ab", str(models["a"]), str(models["b"]), "--replay", str(models["replay"]), "--explore",
             "--data-dir", str(tmp_path))  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "A - B:" in r.output and "95% CI" in r.output and "over 2 markets" in r.output


def test_paired_ci() -> None:
    n, mean, lo, hi = paired_ci({"m1": 3.0, "m2": 1.0, "m3": 2.0}, {"m1": 1.0, "m2": 1.0, "m3": 1.0})
    assert n == 3 and mean == pytest.approx(1.0)
    # sd = 1, t(0.975, 2) = 4.303: half-width 4.303 / sqrt(3)
    assert (hi - lo) / 2 == pytest.approx(4.302653 / 3**0.5, rel=1e-6)
    # 12 markets, df = 11: t = 2.201 exactly (the old table rounded df up to 12 and gave 2.179);
    # a market only one model traded counts as 0 for the other
    a = {f"m{i}": float(i % 4) for i in range(12)}
    b = {f"m{i}": 1.0 for i in range(11)}
    n, mean, lo, hi = paired_ci(a, b)
    diffs = [a[f"m{i}"] - b.get(f"m{i}", 0.0) for i in range(12)]
    sd = float(np.std(diffs, ddof=1))
    assert n == 12 and mean == pytest.approx(np.mean(diffs))
    assert (hi - lo) / 2 == pytest.approx(2.200985 * sd / 12**0.5, rel=1e-6)
    assert paired_ci({}, {}) == (0, 0.0, 0.0, 0.0)


def test_live_mode_refuses_without_confirmation_and_credentials(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("POLYMARKET_PRIVATE_KEY", raising=False)
    r = _run("run", "--mode", "live", "--data-dir", str(tmp_path))
    assert r.exit_code == 2 and "--i-understand-live-trading" in r.output
    assert "Traceback" not in r.output
    r = _run("run", "--mode", "live", "--i-understand-live-trading", "--data-dir", str(tmp_path))
    assert r.exit_code == 2 and "POLYMARKET_PRIVATE_KEY" in r.output
    r = _run("run", "--mode", "bogus", "--data-dir", str(tmp_path))
    assert r.exit_code == 2
    r = _run("run", "--replay", str(tmp_path / "missing.jsonl"), "--data-dir", str(tmp_path))
    assert r.exit_code == 2 and "no such file" in r.output


def test_kill_command(tmp_path: Path) -> None:
    assert _run("kill", "--data-dir", str(tmp_path)).exit_code == 0
    assert (tmp_path / "KILL").exists()
    assert _run("kill", "--off", "--data-dir", str(tmp_path)).exit_code == 0
    assert not (tmp_path / "KILL").exists()


def test_secrets_are_redacted_from_logs(caplog: pytest.LogCaptureFixture) -> None:
    env = {
        "POLYMARKET_PRIVATE_KEY": "0xdeadbeefcafebabe0123456789",
        "POLY_API_SECRET": "c2VjcmV0LXNlY3JldA==",
        "DATABASE_URL": "postgresql://trader:hunter2pass@db:5432/x",
    }
    filt = RedactSecrets(env)
    logger = logging.getLogger("redaction-test")
    handler = caplog.handler
    handler.addFilter(filt)
    try:
        with caplog.at_level(logging.INFO, logger="redaction-test"):
            logger.info("key=%s secret=%s", env["POLYMARKET_PRIVATE_KEY"], env["POLY_API_SECRET"])
            logger.warning("db %s password hunter2pass", env["DATABASE_URL"])
            try:
                raise ValueError(f"bad key {env['POLYMARKET_PRIVATE_KEY']}")
            except ValueError:
                logger.exception("failed")
    finally:
        handler.removeFilter(filt)
    text = caplog.text
    assert "deadbeef" not in text and "c2VjcmV0" not in text and "hunter2pass" not in text
    assert text.count("***") >= 4
