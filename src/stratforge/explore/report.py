"""The final report of an exploration run: Markdown with PNG plots, written next to the run store."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from stratforge.explore.store import STATUS_EVALUATED, RunStore, atomic_write_text

REPORT_NAME = "REPORT.md"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _hypothesis_titles() -> dict[str, str]:
    shipped = Path(__file__).resolve().parent / "hypotheses.json"
    return {h["id"]: h["title"] for h in json.loads(shipped.read_text()).get("hypotheses", [])}


def _plot_edges(store: RunStore, path: Path) -> None:
    plt = _plt()
    its = [i for i in store.iterations(finished_only=True) if i.edge is not None]
    champs = store.champion_history()
    fig, ax = plt.subplots(figsize=(8, 4))
    full = [i for i in its if i.stage_results.get("1000") or _sims(i) >= 1000]
    partial = [i for i in its if i not in full]
    ax.scatter(
        [i.number for i in partial], [i.edge for i in partial], s=12, c="#bbbbbb", label="stopped early"
    )
    ax.scatter([i.number for i in full], [i.edge for i in full], s=16, c="#1f77b4", label="all stages")
    if champs:
        xs, ys = [], []
        last = max((i.number for i in its), default=0)
        for c in champs:
            if ys:
                xs.append(c.iteration)
                ys.append(ys[-1])
            xs.append(c.iteration)
            ys.append(c.edge)
        xs.append(last)
        ys.append(ys[-1])
        ax.plot(xs, ys, c="#d62728", lw=2, label="champion")
    ax.set_xlabel("iteration")
    ax.set_ylabel("mean edge")
    ax.set_title("Edge over iterations")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sims(it: Any) -> int:
    sims = [int(k) for k in it.stage_results if k.isdigit()]
    return max(sims, default=0)


def _plot_champions(store: RunStore, path: Path) -> None:
    plt = _plt()
    champs = store.champion_history()
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(champs))
    ax.bar(x - 0.2, [c.edge for c in champs], width=0.4, label="selection seeds")
    ax.bar(x + 0.2, [c.holdout_edge or 0 for c in champs], width=0.4, label="holdout seeds")
    ax.set_xticks(x, [f"#{c.iteration}" for c in champs])
    lo = min([c.edge for c in champs] + [c.holdout_edge or c.edge for c in champs], default=0)
    ax.set_ylim(max(0, lo - 30), None)
    ax.set_ylabel("mean edge")
    ax.set_title("Champion history (selection vs holdout)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_distribution(store: RunStore, path: Path) -> None:
    plt = _plt()
    champ = store.champion()
    first = store.champion_history()[0] if store.champion_history() else None
    fig, ax = plt.subplots(figsize=(8, 4))
    for c, label, color in ((first, "starting champion", "#999999"), (champ, "final champion", "#d62728")):
        if c is not None and c.stats.get("selection_edges"):
            ax.hist(
                c.stats["selection_edges"], bins=40, alpha=0.6, label=f"{label} #{c.iteration}", color=color
            )
    ax.set_xlabel("edge per simulation")
    ax.set_ylabel("simulations")
    ax.set_title("Edge distribution over the selection seeds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_hypotheses(coverage: dict[str, dict[str, Any]], titles: dict[str, str], path: Path) -> None:
    plt = _plt()
    ids = list(coverage)
    fig, ax1 = plt.subplots(figsize=(8, 4))
    y = np.arange(len(ids))
    ax1.barh(y, [coverage[h]["iterations"] for h in ids], color="#1f77b4")
    ax1.set_yticks(y, [titles.get(h, h) for h in ids])
    ax1.set_xlabel("iterations")
    for i, h in enumerate(ids):
        best = coverage[h]["best_edge"]
        if best is not None:
            ax1.text(coverage[h]["iterations"], i, f"  best {best:.1f}", va="center", fontsize=8)
    ax1.set_title("Hypothesis coverage")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def recommendations(store: RunStore, coverage: dict[str, dict[str, Any]]) -> list[str]:
    """Plain advice read off the run's data."""
    out: list[str] = []
    champ = store.champion()
    totals = store.totals()
    if champ and champ.holdout_edge is not None:
        gap = champ.edge - champ.holdout_edge
        if gap > 5:
            out.append(
                f"The champion scores {gap:.1f} less on holdout seeds than on selection seeds: it may be"
                " fitted to the selection seeds; prefer robustness-check results before submitting."
            )
        else:
            out.append(
                f"Selection and holdout scores agree (gap {gap:+.1f}): no sign of overfitting to the seeds."
            )
    unexplored = [h for h, c in coverage.items() if c["iterations"] == 0]
    if unexplored:
        out.append(
            "Unexplored hypotheses: "
            + ", ".join(unexplored)
            + ". A longer run or an LLM backend would cover them."
        )
    if totals["iterations"] and totals["failed"] / totals["iterations"] > 0.3:
        out.append(
            f"{totals['failed']} of {totals['iterations']} iterations failed validation or compilation: review the failure reasons (`stratforge explore status`)."
        )
    recent = [i.edge for i in store.iterations(STATUS_EVALUATED)[-10:] if i.edge is not None]
    if len(recent) >= 10 and float(np.std(recent)) < 2.0:
        out.append(
            "The last 10 results vary by less than 2 edge: the search has plateaued; widen mutations or add templates."
        )
    if champ is not None:
        out.append(
            f"Submit-ready source: `{store.root / 'champion.sol'}` (validate with `stratforge amm validate`)."
        )
    return out


def write_report(store: RunStore) -> Path:
    """Write REPORT.md and its plots into the run directory; returns the report's path."""
    root = store.root
    plots = root / "plots"
    plots.mkdir(exist_ok=True)
    titles = _hypothesis_titles()
    coverage = store.hypothesis_coverage(list(titles))
    info = store.run_info()
    totals = store.totals()
    champs = store.champion_history()
    champ = champs[-1] if champs else None

    _plot_edges(store, plots / "edge_over_iterations.png")
    _plot_champions(store, plots / "champion_history.png")
    _plot_distribution(store, plots / "edge_distribution.png")
    _plot_hypotheses(coverage, titles, plots / "hypothesis_coverage.png")

    lines = ["# Exploration report", ""]
    lines += [
        f"- run directory: `{root}`",
        f"- status: {info.status}",
        f"- iterations: {totals['iterations']} finished ({totals['evaluated']} evaluated, {totals['failed']} failed)",
        f"- LLM tokens: {totals['tokens_in']} in / {totals['tokens_out']} out, cost ${totals['cost_usd']:.2f}",
        f"- versions: {json.dumps(info.versions)}",
        "",
    ]
    if champ is not None:
        lines += [
            "## Champion",
            "",
            f"Iteration #{champ.iteration}: **{champ.edge:.2f}** mean edge on the selection seeds"
            + (
                f", **{champ.holdout_edge:.2f}** on holdout seeds never used for selection."
                if champ.holdout_edge is not None
                else "."
            ),
            "",
            f"Reason for promotion: {champ.reason}",
            "",
            f"Source: `{root / 'champion.sol'}`",
            "",
        ]
    lines += ["![edge over iterations](plots/edge_over_iterations.png)", ""]
    lines += ["## Champion history", "", "| iteration | edge | holdout | reason |", "|---|---|---|---|"]
    for c in champs:
        holdout = "" if c.holdout_edge is None else f"{c.holdout_edge:.2f}"
        lines.append(f"| #{c.iteration} | {c.edge:.2f} | {holdout} | {c.reason} |")
    lines += [
        "",
        "![champion history](plots/champion_history.png)",
        "",
        "![edge distribution](plots/edge_distribution.png)",
        "",
    ]
    lines += [
        "## Hypothesis coverage",
        "",
        "| hypothesis | iterations | evaluated | best edge |",
        "|---|---|---|---|",
    ]
    for h, c in coverage.items():
        best = "" if c["best_edge"] is None else f"{c['best_edge']:.2f}"
        lines.append(f"| {titles.get(h, h)} | {c['iterations']} | {c['evaluated']} | {best} |")
    lines += ["", "![hypothesis coverage](plots/hypothesis_coverage.png)", ""]
    lines += [
        "## Top strategies",
        "",
        "| iteration | template | edge | sims | avg bid/ask bps |",
        "|---|---|---|---|---|",
    ]
    for it in store.top_iterations(10):
        last = it.stage_results.get(str(_sims(it)), {}).get("summary", {})
        fees = f"{last.get('avg_bid_fee_bps', float('nan')):.1f} / {last.get('avg_ask_fee_bps', float('nan')):.1f}"
        lines.append(
            f"| #{it.number} | {it.template or it.proposer or ''} | {it.edge:.2f} | {_sims(it)} | {fees} |"
        )
    failures = Counter(
        (i.errors[0] if i.errors else "unknown")[:80]
        for i in store.iterations(finished_only=True)
        if i.status == "failed"
    )
    if failures:
        lines += ["", "## Failure reasons", ""] + [
            f"- {n} x {reason}" for reason, n in failures.most_common(8)
        ]
    lines += ["", "## Recommendations", ""] + [f"- {r}" for r in recommendations(store, coverage)]
    path = root / REPORT_NAME
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
