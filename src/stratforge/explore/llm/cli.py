"""`stratforge explore llm ...`: ask a backend once, inspect the cache, run the extractor on a file.

Mount with ``app.add_typer(llm_app, name="llm")``. `config_from_cli` is the one place that turns
CLI options (plus an optional TOML file) into an `LLMConfig`, for any command that calls an LLM.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from stratforge.explore.extract import extract_response
from stratforge.explore.llm import LLMConfig, LLMError, ResponseCache, make_backend
from stratforge.explore.llm.config import BACKENDS
from stratforge.explore.llm.types import LLMConfigError

llm_app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, help="LLM backends and cache.")
err = Console(stderr=True, soft_wrap=True)  # one line per message, whatever the terminal width
DEFAULT_CACHE_DIR = ".stratforge/llm-cache"  # `ask` outside a run; `explore run` uses its state dir


def config_from_cli(config_file: Path | None = None, **options: Any) -> LLMConfig:
    """TOML file (if any) overridden by the options that were given; one-line `BadParameter` on error."""
    try:
        base = LLMConfig.from_toml(config_file) if config_file else LLMConfig()
        cfg = base.with_overrides(**options)
        cfg.validate()
        return cfg
    except LLMConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from None


@llm_app.command("ask")
def ask(
    prompt_file: str = typer.Argument(..., help="File with the prompt, or - for stdin."),
    system_file: str | None = typer.Option(None, "--system-file", help="File with the system prompt."),
    config: Path | None = typer.Option(None, "--config", help="TOML file with an [llm] table."),
    backend: str | None = typer.Option(None, "--backend", help=f"One of: {', '.join(BACKENDS)}."),
    model: str | None = typer.Option(None, "--model"),
    base_url: str | None = typer.Option(None, "--base-url"),
    api_key_env: str | None = typer.Option(None, "--api-key-env", help="Env variable holding the API key."),
    timeout_s: float | None = typer.Option(None, "--timeout", help="Hard limit per call, seconds."),
    max_tokens: int | None = typer.Option(None, "--max-tokens"),
    temperature: float | None = typer.Option(None, "--temperature"),
    budget_usd: float | None = typer.Option(None, "--budget-usd"),
    cache_dir: str | None = typer.Option(None, "--cache-dir"),
    replay_of: str | None = typer.Option(None, "--replay-of", help="Backend whose recordings to replay."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not answer from the cache (still records)."),
    extract: bool = typer.Option(
        False, "--extract", help="Print the extraction summary instead of the text."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Send one prompt and print the answer; usage and cost go to stderr."""
    cfg = config_from_cli(
        config,
        backend=backend,
        model=model,
        base_url=base_url,
        api_key_env=api_key_env,
        timeout_s=timeout_s,
        max_tokens=max_tokens,
        temperature=temperature,
        budget_usd=budget_usd,
        cache_dir=cache_dir,
        replay_of=replay_of,
        use_cache=False if no_cache else None,
    )
    if cfg.cache_dir is None:
        cfg.cache_dir = DEFAULT_CACHE_DIR
    prompt = _read(prompt_file)
    system = _read(system_file) if system_file else None
    be = make_backend(cfg)
    try:
        with err.status(f"[bold]waiting for {cfg.backend}[/] (timeout {cfg.timeout_s:g}s)"):
            resp = be.complete(prompt, system=system)
    except LLMError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    finally:
        be.close()
    ex = extract_response(resp.text) if extract else None
    if as_json:
        out: dict[str, Any] = {k: v for k, v in resp.to_dict().items() if k not in ("raw", "stderr")}
        if ex is not None:
            out["extraction"] = ex.to_dict()
        typer.echo(json.dumps(out, indent=1))
    elif ex is not None:
        _print_extraction(ex)
    else:
        typer.echo(resp.text)
    tag = "cache hit" if resp.cached else f"{resp.latency_s:.1f}s"
    err.print(
        f"[dim]{resp.backend}/{resp.model}: {resp.input_tokens} in, {resp.output_tokens} out, "
        f"${resp.cost_usd:.4f} ({tag}); key {resp.key[:12]}[/]"
    )


def _print_extraction(ex: Any) -> None:
    status = "[green]ok[/]" if ex.ok else f"[red]failed:[/] {escape(ex.failure_reason or '')}"
    err.print(f"extraction: {status}; structure_ok={ex.structure_ok}; sections={ex.section_order}")
    if ex.metadata is not None:
        err.print(f"metadata{' (partial)' if ex.metadata_partial else ''}: {escape(json.dumps(ex.metadata))}")
    elif ex.metadata_error:
        err.print(f"metadata: {escape(ex.metadata_error)}")
    for w in ex.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}")
    if ex.code is not None:
        typer.echo(ex.code, nl=False)


@llm_app.command("extract")
def extract_cmd(
    response_file: str = typer.Argument(..., help="A saved LLM answer (markdown), or - for stdin."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole extraction as JSON."),
) -> None:
    """Run the extractor on a saved answer: code to stdout, summary to stderr. Exit 1 without code."""
    ex = extract_response(_read(response_file))
    if as_json:
        typer.echo(json.dumps(ex.to_dict(), indent=1))
    else:
        _print_extraction(ex)
    if not ex.ok:
        raise typer.Exit(1)


@llm_app.command("cache")
def cache_cmd(
    cache_dir: Path = typer.Option(Path(DEFAULT_CACHE_DIR), "--cache-dir"),
) -> None:
    """Summarise a response cache: entries, bytes, and tokens/cost it saves on replay."""
    cache = ResponseCache(cache_dir)
    keys = cache.keys()
    size = tin = tout = 0
    cost = 0.0
    kinds: dict[str, int] = {}
    for key in keys:
        path = cache.path_for(key)
        size += path.stat().st_size
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        kinds[rec["request"]["kind"]] = kinds.get(rec["request"]["kind"], 0) + 1
        tin += int(rec["response"].get("input_tokens", 0))
        tout += int(rec["response"].get("output_tokens", 0))
        cost += float(rec["response"].get("cost_usd", 0.0))
    by_kind = ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())) or "empty"
    typer.echo(f"{cache_dir}: {len(keys)} responses ({by_kind}), {size / 1024:.1f} KiB")
    typer.echo(f"recorded usage: {tin} input + {tout} output tokens, ${cost:.4f}")
