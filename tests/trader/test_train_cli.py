"""Training / evaluation loops and the `stratforge trader` CLI, end to end on small budgets."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from phase5_data import PHASE5_DATA, needs_phase5

from stratforge.trader.train import EVAL_SEED_BASE, TrainConfig, train, train_seed

STRATFORGE = [sys.executable, "-c", "import sys; from stratforge.cli import main; sys.exit(main())"]


def cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STRATFORGE, "trader", *args], capture_output=True, text=True, timeout=timeout)


def test_training_seeds_never_reach_evaluation_seeds() -> None:
    assert train_seed(99, 99_999) < EVAL_SEED_BASE
    with pytest.raises(ValueError):
        train(TrainConfig(episodes=1, seed=100), "/tmp/unused")


def test_short_training_writes_model_log_and_checkpoints(tmp_path: Path) -> None:
    from stratforge.trader.model import load_policy

    cfg = TrainConfig(
        episodes=2, n_envs=2, buffer_size=256, minibatch_size=128, n_epochs=1, checkpoint_every=1
    )
    summary = train(cfg, tmp_path)
    assert summary["updates"] >= 2 and len(summary["episode_pnl"]) == 2
    with (tmp_path / "updates.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == summary["updates"] and "approx_kl" in rows[0]
    assert (tmp_path / "checkpoints" / "update_00001" / "rl_model.safetensors").exists()
    policy = load_policy(tmp_path / "model")
    p = policy.action_probs(np.zeros((2, 18), np.float32), np.zeros((2, 90), np.float32))
    assert p.shape == (2, 3)
    assert json.loads((tmp_path / "train_config.json").read_text())["episodes"] == 2


def test_cli_train_eval_backtest_synth(tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = cli("train", "--out", str(run), "--episodes", "1", "--envs", "1", "--buffer", "128", "--epochs", "1")
    assert r.returncode == 0, r.stderr
    r = cli("eval", "--model", str(run / "model"), "--episodes", "2", "--out", str(tmp_path / "ev"))
    assert r.returncode == 0, r.stderr
    ev = json.loads((tmp_path / "ev" / "eval.json").read_text())
    baselines = {"random", "momentum", "mean_reversion", "spot_momentum", "oracle"}
    assert set(ev["policies"]) == baselines | {"model"}
    assert ev["sizing"] == "confidence" and ev["market"]["lag_s"] == [0.0, 2.0]
    assert set(ev["paired_difference"]) == baselines
    assert len(ev["per_episode_pnl"]["model"]) == 2 and "oracle_share" in ev
    assert (tmp_path / "ev" / "equity.png").stat().st_size > 5000
    replay = tmp_path / "s.jsonl"
    r = cli("synth", "--out", str(replay), "--seed", "7", "--assets", "btc,eth")
    assert r.returncode == 0, r.stderr
    r = cli("backtest", str(replay), "--policy", str(run / "model"), "--out", str(tmp_path / "bt.json"))
    assert r.returncode == 0, r.stderr
    bt = json.loads((tmp_path / "bt.json").read_text())
    assert len(bt["per_market"]) == 2 and bt["policy"] == "model"
    assert bt["open_at_end"] == 0


@pytest.mark.parametrize(
    "args",
    [
        ("train", "--tick", "7"),
        ("train", "--init", "/no/such/model"),
        ("eval", "--model", "/no/such/model"),
        ("eval", "--model", ".", "--seed-base", "5"),
        ("backtest", "/no/such/file.jsonl"),
        ("synth", "--out", "/tmp/x.jsonl", "--assets", "DOGE"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(args: tuple[str, ...]) -> None:
    r = cli(*args, timeout=600)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_cli_backtest_bad_replay_and_policy(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    r = cli("backtest", str(bad), timeout=600)
    assert r.returncode == 2 and "bad.jsonl:1" in r.stderr and "Traceback" not in r.stderr
    r = cli("backtest", str(bad), "--policy", "nonsense", timeout=600)
    assert r.returncode == 2 and "nonsense" in r.stderr


def test_phase5_without_its_setting_is_a_one_line_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "STRATFORGE_PHASE5_DIR"}
    run = lambda *a: subprocess.run(  # noqa: E731
        [*STRATFORGE, "trader", *a], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path
    )
    replay = tmp_path / "s.jsonl"
    assert run("synth", "--out", str(replay), "--seed", "1", "--windows", "1").returncode == 0
    for r in (
        run("backtest", str(replay), "--policy", "phase5"),
        run("train", "--init", "phase5", "--episodes", "1", "--out", str(tmp_path / "t")),
    ):
        assert r.returncode == 2 and "STRATFORGE_PHASE5_DIR" in r.stderr and "--phase5-dir" in r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run("--phase5-dir", str(tmp_path / "missing"), "backtest", str(replay), "--policy", "phase5")
    assert r.returncode == 2 and "not found" in r.stderr and str(tmp_path / "missing") in r.stderr


@needs_phase5
def test_phase5_dir_option_finds_the_published_weights(tmp_path: Path) -> None:
    replay = tmp_path / "s.jsonl"
    assert cli("synth", "--out", str(replay), "--seed", "1", "--windows", "1").returncode == 0
    r = cli("--phase5-dir", str(PHASE5_DATA), "backtest", str(replay), "--policy", "phase5")
    assert r.returncode == 0, r.stderr
    assert "backtest: phase5" in r.stdout


@pytest.mark.slow
def test_brief_training_beats_random_after_fees_on_held_out_seeds(tmp_path: Path) -> None:
    """PPO from scratch for 24 episodes (a few minutes), then paired evaluation on 16 held-out seeds."""
    from stratforge.trader.baselines import ModelPolicy, RandomPolicy
    from stratforge.trader.evaluation import evaluate
    from stratforge.trader.model import load_policy

    cfg = TrainConfig(episodes=24, n_envs=4, buffer_size=512, minibatch_size=128, n_epochs=4)
    train(cfg, tmp_path)
    policies = {"model": ModelPolicy(load_policy(tmp_path / "model")), "random": RandomPolicy()}
    res = evaluate(policies, list(range(EVAL_SEED_BASE + 500, EVAL_SEED_BASE + 516)))
    diff = res.summary("model")["paired_difference"]["random"]
    assert diff["low"] > 0, diff
