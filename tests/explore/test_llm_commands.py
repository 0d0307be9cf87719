"""The `llm` Typer commands: ask (live then replay), extract, cache, and one-line errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from stratforge.explore.llm.cli import llm_app

from .fakes.llm_fakes import Reply, openai_body, recorded, scripted_server

runner = CliRunner()
VALID = recorded("valid_response.md")


def test_ask_live_then_replay_offline(tmp_path):
    prompt = tmp_path / "prompt.md"
    prompt.write_text("Design a fee strategy.")
    cache = tmp_path / "cache"
    with scripted_server(Reply(body=openai_body(VALID, tin=900, tout=800))) as srv:
        live = runner.invoke(
            llm_app,
            [
                "ask",
                str(prompt),
                "--backend",
                "openai",
                "--model",
                "m",
                "--base-url",
                srv.url,
                "--cache-dir",
                str(cache),
                "--timeout",
                "5",
                "--json",
            ],
        )
    assert live.exit_code == 0, live.output
    out = json.loads(live.stdout)
    assert out["text"] == VALID and out["input_tokens"] == 900 and not out["cached"]

    replay = runner.invoke(
        llm_app,
        [
            "ask",
            str(prompt),
            "--backend",
            "replay",
            "--replay-of",
            "openai",
            "--model",
            "m",
            "--base-url",
            srv.url,
            "--cache-dir",
            str(cache),
            "--extract",
        ],
    )
    assert replay.exit_code == 0, replay.output
    assert (
        replay.stdout.startswith("// SPDX-License-Identifier: MIT") and "contract Strategy" in replay.stdout
    )
    assert "cache hit" in replay.stderr and "structure_ok=True" in replay.stderr

    stats = runner.invoke(llm_app, ["cache", "--cache-dir", str(cache)])
    assert stats.exit_code == 0 and "1 responses (openai: 1)" in stats.stdout and "900 input" in stats.stdout


def test_ask_errors_are_one_line(tmp_path):
    prompt = tmp_path / "p.md"
    prompt.write_text("x")
    bad = runner.invoke(llm_app, ["ask", str(prompt), "--backend", "gpt"])
    assert bad.exit_code == 2 and "unknown LLM backend 'gpt'" in bad.output and "Traceback" not in bad.output
    miss = runner.invoke(
        llm_app,
        ["ask", str(prompt), "--backend", "replay", "--replay-of", "codex", "--cache-dir", str(tmp_path)],
    )
    assert miss.exit_code == 1 and "no recorded codex response" in miss.stderr
    assert len(miss.stderr.strip().splitlines()) == 1
    missing = runner.invoke(llm_app, ["ask", str(tmp_path / "nope.md"), "--backend", "replay"])
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_extract_command(tmp_path):
    good = tmp_path / "good.md"
    good.write_text(VALID)
    res = runner.invoke(llm_app, ["extract", str(good), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["metadata"]["name"] == "ShockDecay"
    prose = tmp_path / "prose.md"
    prose.write_text("I would rather not write code today.")
    res = runner.invoke(llm_app, ["extract", str(prose)])
    assert res.exit_code == 1 and "prose only" in res.stderr
