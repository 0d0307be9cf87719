"""The final report of an exploration run: Markdown with PNG plots, written next to the run store."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stratforge.explore.hypotheses import run_hypotheses
from stratforge.explore.store import STATUS_EVALUATED, RunStore, atomic_write_text
from stratforge.stats import PairedComparison, paired

REPORT_NAME = "REPORT.md"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _hypothesis_titles(store: RunStore) -> dict[str, str]:
    return {h.id: h.title for h in run_hypotheses(store)}


def reference_comparison(store: RunStore) -> dict[str, PairedComparison] | None:
    """The champion against the fixed reference strategy on the same selection and on the same
    holdout seeds (None when the run has no reference or the champion no holdout edges)."""
    history = store.champion_history()
    if not history:
        return None
    ref = history[0].stats.get("reference")
    champ = history[-1].stats
    if not ref or not champ.get("holdout_edges") or len(champ["holdout_edges"]) != len(ref["holdout_edges"]):
        return None
    return {
        "selection": paired(champ["selection_edges"], ref["selection_edges"]),
        "holdout": paired(champ["holdout_edges"], ref["holdout_edges"]),
    }


@dataclass(frozen=True)
class Ranked:
    """An iteration's best member against the final champion on exactly the seeds it ran on."""

    number: int
    label: str
    edge: float
    sims: int
    vs_champion: PairedComparison | None


def ranked_strategies(store: RunStore, n: int = 10) -> list[Ranked]:
    """Strategies ranked by comparable evidence: the paired difference against the final champion
    on the seeds each one was scored on, ordered by the lower end of its 95% interval (so an edge
    seen on 10 seeds does not outrank one established on 1000)."""
    champ = store.champion()
    if champ is None:
        return []
    champ_sel = np.asarray(champ.stats["selection_edges"], dtype=float)
    n_sel = len(champ_sel)
    out = []
    for it in store.iterations(STATUS_EVALUATED):
        edges = it.stage_results.get("edges")
        if it.edge is None or not edges:
            continue
        off = int(it.stage_results.get("seed_offset", 0))
        seeds = [(off + j) % n_sel for j in range(len(edges))]
        vs = None if it.number == champ.iteration else paired(edges, champ_sel[seeds])
        out.append(Ranked(it.number, it.template or it.proposer or "", float(np.mean(edges)), len(edges), vs))
    out.sort(key=lambda r: (-(r.vs_champion.low if r.vs_champion else 0.0), -r.sims, r.number))
    return out[:n]


def _plot_edges(store: RunStore, path: Path) -> None:
    plt = _plt()
    its = [i for i in store.iterations(finished_only=True) if i.edge is not None]
    champs = store.champion_history()
    fig, ax = plt.subplots(figsize=(8, 4))
    most = max((_sims(i) for i in its), default=0)
    full = [i for i in its if _sims(i) >= most]
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
    # a champion replaced before the run ended has no holdout edge (unless every one was scored)
    holdout = [np.nan if c.holdout_edge is None else c.holdout_edge for c in champs]
    ax.bar(x + 0.2, holdout, width=0.4, label="holdout seeds")
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
    versus = reference_comparison(store)
    if versus is not None:
        sel, hold = versus["selection"], versus["holdout"]
        if hold.high < sel.mean_diff:
            out.append(
                f"The champion's lead over the reference strategy shrinks from {sel.mean_diff:+.1f} on the"
                f" selection seeds to {hold} on the holdout seeds: part of its selection score is fitted"
                " to the selection seeds; prefer robustness-check results before submitting."
            )
        else:
            out.append(
                f"The champion's lead over the reference strategy holds on the holdout seeds ({sel.mean_diff:+.1f}"
                f" on selection, {hold} on holdout): the selection-vs-holdout gap is the seed block's,"
                " not overfitting."
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
            f"Submission file: `stratforge explore export --state-dir {store.root} --out Strategy.sol`."
        )
    return out


def write_report(store: RunStore) -> Path:
    """Write REPORT.md and its plots into the run directory; returns the report's path."""
    root = store.root
    plots = root / "plots"
    plots.mkdir(exist_ok=True)
    titles = _hypothesis_titles(store)
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
                else " (not yet scored on the holdout seeds: that happens when the run ends; resume it to finish)."
            ),
            "",
            f"Reason for promotion: {champ.reason}",
            "",
        ]
        versus = reference_comparison(store)
        if versus is not None:
            ref = champs[0].stats["reference"]
            sel, hold = versus["selection"], versus["holdout"]
            lines += [
                f"| on the same seeds | champion | {ref['name']} | champion - reference (95% CI) |",
                "|---|---|---|---|",
                f"| selection ({sel.n} seeds) | {sel.mean_a:.2f} | {sel.mean_b:.2f} | {sel} |",
                f"| holdout ({hold.n} seeds) | {hold.mean_a:.2f} | {hold.mean_b:.2f} | {hold} |",
                "",
            ]
        lines += [
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
        "Each iteration's best against the final champion on the seeds it was scored on, ranked by the"
        " lower end of the 95% interval of the paired difference.",
        "",
        "| iteration | template | sims | edge on its seeds | vs champion (95% CI) | avg bid/ask bps |",
        "|---|---|---|---|---|---|",
    ]
    for r in ranked_strategies(store, 10):
        it = store.iteration(r.number)
        last = it.stage_results.get(str(_sims(it)), {}).get("summary", {}) if it else {}
        fees = f"{last.get('avg_bid_fee_bps', float('nan')):.1f} / {last.get('avg_ask_fee_bps', float('nan')):.1f}"
        vs = "champion" if r.vs_champion is None else str(r.vs_champion)
        lines.append(f"| #{r.number} | {r.label} | {r.sims} | {r.edge:.2f} | {vs} | {fees} |")
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
