"""Build the prompt an LLM gets for one exploration iteration.

The prompt is assembled from the run store, so it adapts as the run goes on:

* the challenge rules and the strategy interface (the shipped ``IAMMStrategy.sol`` and
  ``AMMStrategyBase.sol`` when present, else a built-in summary);
* the champion's source and scores, the top strategies with their diagnostics (edge, average fees,
  arbitrage and retail volume), and the most recent failures with their error messages;
* a coverage table of the hypotheses and one *focus* hypothesis: the least explored one (fewest
  finished iterations, then lowest best edge, then file order), with its guidance;
* the required answer structure: ``## DRAFT_STRATEGY_IDEA``, ``## DESIGN_REVIEW``,
  ``## REVISED_IMPLEMENTATION`` (one solidity block), ``## STRATEGY_METADATA`` (one json block with
  name, hypothesis id and parameters).

The same store state gives the same prompt byte for byte (no clocks, stable ordering), and its
size is bounded: long sources and error lists are cut with a note saying so, and whole sections
are shortened until the prompt fits ``max_chars``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stratforge.explore.hypotheses import Hypothesis, least_explored, load_hypotheses, run_hypotheses
from stratforge.explore.store import RunStore

__all__ = ["BuiltPrompt", "Hypothesis", "PromptConfig", "build_prompt", "load_hypotheses"]

CONTRACTS_DIR = Path(__file__).resolve().parents[1] / "amm" / "contracts"

HEADER_DRAFT = "## DRAFT_STRATEGY_IDEA"
HEADER_REVIEW = "## DESIGN_REVIEW"
HEADER_IMPLEMENTATION = "## REVISED_IMPLEMENTATION"
HEADER_METADATA = "## STRATEGY_METADATA"
RESPONSE_HEADERS = (HEADER_DRAFT, HEADER_REVIEW, HEADER_IMPLEMENTATION, HEADER_METADATA)


@dataclass(frozen=True)
class PromptConfig:
    top_k: int = 3  #: top strategies shown (the champion's source is shown in full, theirs summarized)
    max_failures: int = 4
    max_source_chars: int = 7000
    max_error_chars: int = 500
    max_chars: int = 32000  #: hard bound on the whole prompt


@dataclass(frozen=True)
class BuiltPrompt:
    text: str
    hypothesis: Hypothesis
    truncated: bool


# -- pieces ----------------------------------------------------------------------------------------

_RULES = """\
You design the fee strategy of a constant-product AMM (x * y = k) in Solidity 0.8.24.
Scoring: each simulation runs 10,000 steps. Every step the fair price moves by a geometric Brownian
motion (sigma ~0.09-0.10 % per step), an arbitrageur trades your pool back to the fee boundary if that
is profitable, then retail orders (Poisson, ~0.6-1.0 per step, mean size ~20 Y, lognormal) are routed
between your pool and a competing pool with a fixed 30 bps fee, by whichever gives the better price.
Your score is the mean *edge* over simulations: for each trade on your pool, the value you gained
against the fair price (arbitrage is a loss, retail usually a gain). Fixed 50 bps scores ~369.
Fees are charged on the input amount and kept outside the reserves. The bid fee applies when the
pool buys X (trader sells X), the ask fee when the pool sells X.

Hard rules (a violation rejects the strategy):
- exactly `contract Strategy is AMMStrategyBase`, importing only "./AMMStrategyBase.sol" and
  "./IAMMStrategy.sol"; implement afterInitialize, afterSwap and getName;
- persistent state only in the base contract's `slots` (uint256[32]); `constant` values are fine,
  other state variables are not;
- no assembly, external or low-level calls, delegatecall/staticcall, new contracts, selfdestruct,
  transfer/send, .code/.codehash, block.coinbase, custom interfaces or extra imports;
- fees are WAD (1e18 = 100 %), 1 bps = 1e14, at most 1e17 (10 %); a revert or an out-of-range fee in
  afterSwap keeps the previous fees, a revert in afterInitialize fails the run;
- gas: 250,000 per hook call, so keep loops short and bounded.
TradeInfo: isBuy (pool bought X), amountX, amountY (WAD), timestamp (step index), reserveX, reserveY
(post-trade, WAD). Several trades can share a timestamp; the first trade of a step is usually the
arbitrage, after which spot = p / gamma (pool bought X) or p * gamma (pool sold X), gamma = 1 - fee."""

_INTERFACE_SUMMARY = """\
struct TradeInfo { bool isBuy; uint256 amountX; uint256 amountY; uint256 timestamp;
                   uint256 reserveX; uint256 reserveY; }
abstract contract AMMStrategyBase is IAMMStrategy {
    uint256 public constant WAD = 1e18; uint256 public constant MAX_FEE = WAD / 10;
    uint256 public constant MIN_FEE = 0; uint256 public constant BPS = 1e14;
    uint256[32] public slots;
    // helpers: wmul(x, y) = x * y / WAD; wdiv(x, y) = x * WAD / y; clamp(v, lo, hi);
    // bpsToWad(bps); wadToBps(w); clampFee(f); absDiff(a, b); sqrt(x); readSlot(i); writeSlot(i, v)
}
function afterInitialize(uint256 initialX, uint256 initialY) external returns (uint256 bidFee, uint256 askFee);
function afterSwap(TradeInfo calldata trade) external returns (uint256 bidFee, uint256 askFee);
function getName() external view returns (string memory);"""


def interface_text(contracts_dir: Path = CONTRACTS_DIR) -> str:
    """The shipped interface and base contract, or a built-in summary when they are not installed."""
    parts = []
    for name in ("IAMMStrategy.sol", "AMMStrategyBase.sol"):
        path = contracts_dir / name
        if path.is_file():
            parts.append(f"// ---- {name} ----\n{path.read_text().strip()}")
    if len(parts) == 2:
        return "\n\n".join(parts)
    return _INTERFACE_SUMMARY


def truncate(text: str, limit: int, what: str = "text") -> tuple[str, bool]:
    """``text`` cut to about ``limit`` characters (head and tail kept) with a note; flag if cut."""
    if len(text) <= limit:
        return text, False
    head = max(0, int(limit * 0.7))
    tail = max(0, limit - head)
    cut = len(text) - head - tail
    note = f"\n/* ... {what} truncated: {cut} characters omitted ... */\n"
    return text[:head] + note + (text[-tail:] if tail else ""), True


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def diagnostics(stage_results: Mapping[str, Any]) -> dict[str, Any]:
    """Diagnostics of an evaluated iteration: the ``diagnostics`` entry if one was stored, else the
    summary of the largest stage (keys of ``BatchResult.summary()``). Stages may be a list or, as the
    loop stores them, a mapping from the stage's simulation count to ``{"summary": ...}``."""
    if isinstance(stage_results.get("diagnostics"), Mapping):
        return dict(stage_results["diagnostics"])
    sized = [(int(k), v) for k, v in stage_results.items() if k.isdigit() and isinstance(v, Mapping)]
    if sized:
        last = max(sized, key=lambda kv: kv[0])[1]
        return dict(last.get("summary", last))
    stages = stage_results.get("stages")
    if isinstance(stages, list) and stages:
        last = stages[-1]
        if isinstance(last, Mapping):
            return dict(last.get("summary", last))
    return {}


def _diag_line(d: Mapping[str, Any]) -> str:
    keys = [
        ("avg_bid_fee_bps", "avg bid fee (bps)"),
        ("avg_ask_fee_bps", "avg ask fee (bps)"),
        ("mean_arb_volume_y", "arb volume (Y)"),
        ("mean_retail_volume_y", "retail volume (Y)"),
        ("normalizer_mean_edge", "normalizer edge"),
    ]
    parts = [f"{label} {_fmt(d[k], 1)}" for k, label in keys if isinstance(d.get(k), int | float)]
    return "; ".join(parts) if parts else "no diagnostics recorded"


# -- the prompt ------------------------------------------------------------------------------------


def build_prompt(
    store: RunStore,
    hypotheses: Sequence[Hypothesis] | None = None,
    *,
    focus: str | None = None,
    config: PromptConfig = PromptConfig(),
    contracts_dir: Path = CONTRACTS_DIR,
) -> BuiltPrompt:
    """Prompt for the next iteration; ``focus`` forces a hypothesis id instead of the least explored."""
    hyps = list(hypotheses) if hypotheses is not None else run_hypotheses(store)
    coverage = store.hypothesis_coverage([h.id for h in hyps])
    if focus is not None:
        match = [h for h in hyps if h.id == focus]
        if not match:
            raise ValueError(f"unknown hypothesis {focus!r}")
        target = match[0]
    else:
        target = least_explored(hyps, coverage)

    truncated = False
    champion_block, t1 = _champion_section(store, config)
    top_block = _top_section(store, config)
    failures_block, t2 = _failures_section(store, config)
    truncated = t1 or t2
    sections = [
        "# Task: design a better AMM fee strategy",
        _RULES,
        "## Interface\n\n```solidity\n" + interface_text(contracts_dir) + "\n```",
        champion_block,
        top_block,
        failures_block,
        _coverage_section(hyps, coverage, target),
        _response_section(target),
    ]
    text = "\n\n".join(s for s in sections if s) + "\n"
    if len(text) > config.max_chars:
        # Shrink the largest variable part (the champion source) first, then cut hard with a note.
        excess = len(text) - config.max_chars
        smaller = PromptConfig(
            top_k=config.top_k,
            max_failures=config.max_failures,
            max_source_chars=max(1000, config.max_source_chars - excess - 200),
            max_error_chars=config.max_error_chars,
            max_chars=config.max_chars,
        )
        sections[3], _ = _champion_section(store, smaller)
        text = "\n\n".join(s for s in sections if s) + "\n"
        truncated = True
        if len(text) > config.max_chars:
            tail = "\n\n" + sections[-1] + "\n"
            body, _ = truncate(text[: -len(tail)], config.max_chars - len(tail) - 80, "context")
            text = body + tail
    return BuiltPrompt(text, target, truncated)


def _champion_section(store: RunStore, config: PromptConfig) -> tuple[str, bool]:
    champ = store.champion()
    if champ is None:
        return (
            "## Current champion\n\nNo champion yet: the baseline is a fixed 50 bps fee (edge ~369).",
            False,
        )
    it = store.iteration(champ.iteration)
    lines = [
        "## Current champion",
        "",
        f"Iteration {champ.iteration}: edge {_fmt(champ.edge)}, holdout edge {_fmt(champ.holdout_edge)}"
        f" ({champ.reason}).",
    ]
    cut = False
    if it is not None:
        if it.hypothesis:
            lines.append(f"Hypothesis: {it.hypothesis}. {_diag_line(diagnostics(it.stage_results))}.")
        if it.source:
            src, cut = truncate(it.source.strip(), config.max_source_chars, "champion source")
            lines += ["", "```solidity", src, "```"]
    lines.append("\nBeat it: a candidate is promoted only if it is significantly better on paired seeds.")
    return "\n".join(lines), cut


def _top_section(store: RunStore, config: PromptConfig) -> str:
    champ = store.champion()
    top = [t for t in store.top_iterations(config.top_k + 1) if champ is None or t.number != champ.iteration]
    top = top[: config.top_k]
    if not top:
        return ""
    lines = [
        "## Top strategies so far",
        "",
        "| iter | edge | sims | hypothesis | template | diagnostics |",
        "|---|---|---|---|---|---|",
    ]
    for t in top:
        d = diagnostics(t.stage_results)
        sims = d.get("simulations")  # an early-stopped candidate's edge comes from fewer simulations
        lines.append(
            f"| {t.number} | {_fmt(t.edge)} | {_fmt(sims)} | {t.hypothesis or '-'} | {t.template or '-'}"
            f" | {_diag_line(d)} |"
        )
    return "\n".join(lines)


def _failures_section(store: RunStore, config: PromptConfig) -> tuple[str, bool]:
    failures = store.recent_failures(config.max_failures)
    if not failures:
        return "", False
    lines = ["## Recent failures (avoid these mistakes)", ""]
    cut = False
    for f in failures:
        errors = "\n".join(f.errors) or "no error message recorded"
        text, c = truncate(errors, config.max_error_chars, "error list")
        cut = cut or c
        lines.append(f"- iteration {f.number} ({f.hypothesis or 'no hypothesis'}):")
        lines += ["  " + line for line in text.splitlines()]
    total = store.totals()["failed"]
    if total > len(failures):
        lines.append(f"\n({total - len(failures)} older failures not shown.)")
    return "\n".join(lines), cut


def _coverage_section(
    hyps: Sequence[Hypothesis], coverage: Mapping[str, Mapping[str, Any]], target: Hypothesis
) -> str:
    lines = ["## Hypothesis coverage", "", "| id | title | iterations | best edge |", "|---|---|---|---|"]
    for h in hyps:
        c = coverage.get(h.id, {})
        lines.append(f"| {h.id} | {h.title} | {c.get('iterations', 0)} | {_fmt(c.get('best_edge'))} |")
    lines += [
        "",
        f"## Focus for this iteration: {target.id} - {target.title}",
        "",
        target.description,
        "",
        f"Guidance: {target.guidance}",
    ]
    return "\n".join(lines)


def _response_section(target: Hypothesis) -> str:
    example_meta = {
        "name": "ShortDescriptiveName",
        "hypothesis": target.id,
        "parameters": {"BASE_FEE_BPS": 35, "DECAY": 0.9},
    }
    return "\n".join(
        [
            "## Answer format (follow exactly)",
            "",
            "Answer with these four sections, in this order, with these exact headers:",
            "",
            HEADER_DRAFT,
            "The idea in a few sentences: what signal, what fee response, why it should beat the champion.",
            "",
            HEADER_REVIEW,
            "Critique the draft: rule violations, WAD overflow/underflow, division by zero, gas, fee bounds,",
            "state in slots only, how it behaves right after an arbitrage and in calm markets. List fixes.",
            "",
            HEADER_IMPLEMENTATION,
            "Exactly one ```solidity code block with the complete file (SPDX line, pragma, both imports,",
            "`contract Strategy is AMMStrategyBase`). Nothing else in this section.",
            "",
            HEADER_METADATA,
            "Exactly one ```json code block with keys name, hypothesis (the id) and parameters (name -> value"
            " of the tunable constants), for example:",
            "```json",
            json.dumps(example_meta, indent=2),
            "```",
        ]
    )


def build_and_save(
    store: RunStore,
    number: int,
    hypotheses: Sequence[Hypothesis] | None = None,
    *,
    focus: str | None = None,
    config: PromptConfig = PromptConfig(),
) -> BuiltPrompt:
    """Build the prompt for iteration ``number`` and save it (store row + ``prompts/iter_NNNN.md``)."""
    built = build_prompt(store, hypotheses, focus=focus, config=config)
    store.save_prompt(number, built.text)
    return built
