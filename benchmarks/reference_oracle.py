"""Bit-for-bit comparison with the reference engine's own market code, on this machine.

Builds the reference's Rust market (``amm_sim_rs``: price process, retail flow, arbitrage, router,
CFMM and the simulation loop, copied unchanged from a checkout of ``benedictbrady/amm-challenge``)
against rand 0.8 / rand_pcg 0.3 / rand_distr 0.4, with the revm strategy replaced by a callback
(``benchmarks/reference_oracle/``). Each hook call then runs in stratforge's EVM (``--hooks native``)
or as a fresh pyrevm transaction (``--hooks pyrevm``), and every seed's edges, normalizer edge and
volumes are compared with stratforge's engine, bit for bit.

This is how the retail-size ``exp`` defect was found (see docs/solidity.md, "Bit parity"): the two
engines then share every input but the market code, so any difference is ours.

Needs ``cargo`` and the three crates: offline from Debian's packaged crates
(``apt-get install librust-rand-dev librust-rand-pcg-dev librust-rand-distr-dev``, used when
``/usr/share/cargo/registry`` exists) or from crates.io.

    python benchmarks/reference_oracle.py --reference-repo ../amm-challenge STRATEGY.sol|fixed:BPS \\
        [-n 200] [--seed-start 0] [--hooks native|pyrevm] [--build-dir DIR]
"""

from __future__ import annotations

import argparse
import ctypes
import math
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import track
from rich.table import Table

from stratforge.amm import evm
from stratforge.amm.engine import draw_config, simulate
from stratforge.amm.solidity import load_solidity_strategy
from stratforge.amm.strategy import FixedFee, StrategySpec

HERE = Path(__file__).resolve().parent / "reference_oracle"
DEBIAN_CRATES = Path("/usr/share/cargo/registry")
GAS_LIMIT = 250_000
# the reference's files used unchanged (paths under amm_sim_rs/src)
UNCHANGED = [
    "amm/mod.rs",
    "amm/cfmm.rs",
    "market/mod.rs",
    "market/price_process.rs",
    "market/arbitrageur.rs",
    "market/retail.rs",
    "market/router.rs",
    "types/wad.rs",
    "types/trade_info.rs",
    "simulation/engine.rs",
]
HOOK = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.c_uint64,
    ctypes.POINTER(ctypes.c_ubyte),
    ctypes.c_size_t,
    ctypes.POINTER(ctypes.c_ubyte),
    ctypes.POINTER(ctypes.c_size_t),
)


def _without_python_bindings(text: str) -> str:
    """The reference's result types minus pyo3 attributes and #[pymethods] blocks."""
    text = text.replace("use pyo3::prelude::*;\n", "")
    text = re.sub(r"#\[pyclass\]\n", "", text)
    text = re.sub(r"\s*#\[pyo3\([^)]*\)\]", "", text)
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        if lines[i].startswith("#[pymethods]"):
            depth, i = 0, i + 1
            while True:
                depth += lines[i].count("{") - lines[i].count("}")
                i += 1
                if depth == 0 and "}" in lines[i - 1]:
                    break
            continue
        out.append(lines[i])
        i += 1
    text = "\n".join(out)
    return text.split("#[cfg(test)]")[0]


def build(reference_repo: Path, build_dir: Path) -> Path:
    src_root = reference_repo / "amm_sim_rs" / "src"
    if not (src_root / "simulation" / "engine.rs").is_file():
        sys.exit(f"{reference_repo} is not a checkout of benedictbrady/amm-challenge (no amm_sim_rs/src)")
    if shutil.which("cargo") is None:
        sys.exit("cargo not found: install a Rust toolchain")
    src = build_dir / "src"
    for rel in UNCHANGED:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src_root / rel, src / rel)
    (src / "evm").mkdir(exist_ok=True)
    shutil.copyfile(HERE / "strategy.rs", src / "evm" / "strategy.rs")
    shutil.copyfile(HERE / "lib.rs", src / "lib.rs")
    shutil.copyfile(HERE / "config.rs", src / "types" / "config.rs")
    result = _without_python_bindings((src_root / "types" / "result.rs").read_text())
    (src / "types" / "result.rs").write_text(result)
    (src / "types" / "mod.rs").write_text(
        "pub mod wad;\npub mod trade_info;\npub mod config;\npub mod result;\n"
        "pub use wad::Wad;\npub use trade_info::TradeInfo;\npub use config::SimulationConfig;\n"
        "pub use result::{LightweightSimResult, LightweightStepResult};\n"
    )
    (src / "evm" / "mod.rs").write_text("pub mod strategy;\npub use strategy::EVMStrategy;\n")
    (src / "simulation" / "mod.rs").write_text("pub mod engine;\npub use engine::SimulationEngine;\n")
    (build_dir / "Cargo.toml").write_text(
        '[package]\nname = "reference_oracle"\nversion = "0.1.0"\nedition = "2021"\n\n'
        '[lib]\ncrate-type = ["cdylib"]\n\n'
        '[dependencies]\nrand = "0.8"\nrand_pcg = "0.3"\nrand_distr = "0.4"\n\n'
        "[profile.release]\nopt-level = 3\n"
    )
    if DEBIAN_CRATES.is_dir():
        (build_dir / ".cargo").mkdir(exist_ok=True)
        (build_dir / ".cargo" / "config.toml").write_text(
            '[source.crates-io]\nreplace-with = "debian"\n\n'
            f'[source.debian]\ndirectory = "{DEBIAN_CRATES}"\n\n[net]\noffline = true\n'
        )
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=build_dir, check=True)
    return build_dir / "target" / "release" / "libreference_oracle.so"


def hook_server(spec: StrategySpec, engine: str) -> Callable[[bytes], bytes | None]:
    """Return data of one hook call (None when the call failed), with the strategy's storage kept
    between calls the way the reference commits it."""
    if isinstance(spec, FixedFee):
        bid, ask = spec.fees_wad
        fees = bid.to_bytes(32, "big") + ask.to_bytes(32, "big")
        return lambda calldata: fees
    assert isinstance(spec, evm.EvmStrategySpec)
    if engine == "native":
        machine = evm.NativeEvmStrategy(spec.with_engine("native"))

        def native(calldata: bytes) -> bytes | None:
            res = machine.hook(calldata, GAS_LIMIT)
            return (
                machine.last_output
                if isinstance(res, tuple) or res in ("fee_above_max", "malformed_return")
                else None
            )

        return native
    info, state = evm.AccountInfo(nonce=1, code=spec.runtime_code), dict(spec.initial_storage)

    def exact(calldata: bytes) -> bytes | None:
        nonlocal state
        outcome = evm.exact_call(info, state, calldata, GAS_LIMIT)
        if outcome.failure is not None:
            return None
        state = outcome.storage
        return outcome.output

    return exact


def run_reference(lib: ctypes.CDLL, seed: int, call: Callable[[bytes], bytes | None]) -> list[float]:
    c = draw_config(seed)
    m = c.market
    params = (ctypes.c_double * 11)(
        m.n_steps, m.initial_price, m.initial_x, m.initial_y, m.gbm_mu, c.gbm_sigma, m.gbm_dt,
        c.retail_arrival_rate, c.retail_mean_size, m.retail_size_sigma, m.retail_buy_prob,
    )  # fmt: skip

    def hook(ctx: int, data: ctypes.Array, n: int, out: ctypes.Array, out_len: ctypes.Array) -> int:
        ret = call(bytes(data[:n]))
        if ret is None:
            return 1
        k = min(len(ret), 64)  # the reference decodes the first 64 bytes and needs at least 64
        for i in range(k):
            out[i] = ret[i]
        out_len[0] = k
        return 0

    callback = HOOK(hook)
    res = (ctypes.c_double * 5)()
    if lib.refsim_run(params, seed, callback, res) != 0:
        raise RuntimeError(f"the reference's engine failed on seed {seed} (afterInitialize failed?)")
    return list(res)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("strategy", help="a Strategy.sol, or fixed:BPS")
    parser.add_argument("--reference-repo", type=Path, required=True)
    parser.add_argument("-n", "--simulations", type=int, default=100)
    parser.add_argument("--seed-start", type=int, default=0)
    parser.add_argument("--hooks", choices=["native", "pyrevm"], default="native")
    parser.add_argument("--build-dir", type=Path, default=None)
    args = parser.parse_args()
    console = Console()
    build_dir = args.build_dir or Path(tempfile.mkdtemp(prefix="reference_oracle_"))
    with console.status("building the reference's market code"):
        lib = ctypes.CDLL(str(build(args.reference_repo.resolve(), build_dir)))
    lib.refsim_run.argtypes = [
        ctypes.POINTER(ctypes.c_double),
        ctypes.c_uint64,
        HOOK,
        ctypes.POINTER(ctypes.c_double),
    ]
    if args.strategy.startswith("fixed:"):
        spec: StrategySpec = FixedFee(float(args.strategy[6:]))
    else:
        spec = load_solidity_strategy(args.strategy)
    ours_spec = spec.with_engine(args.hooks) if isinstance(spec, evm.EvmStrategySpec) else spec
    table = Table(title=f"{args.strategy}: reference market code vs stratforge (hooks: {args.hooks})")
    for col in ("seed", "reference edge", "stratforge edge", "difference"):
        table.add_column(col, justify="right")
    fields = ("edge", "normalizer edge", "retail volume", "arb volume")
    equal, sums = 0, [0.0, 0.0]
    seeds = range(args.seed_start, args.seed_start + args.simulations)
    for seed in track(seeds, description="seeds", console=console):
        ref = run_reference(lib, seed, hook_server(spec, args.hooks))
        r = simulate(draw_config(seed), ours_spec)
        ours = [r.submission.edge, r.normalizer.edge, r.submission.retail_volume_y, r.submission.arb_volume_y]
        ref = [ref[0], ref[1], ref[3], ref[4]]
        sums[0] += ref[0]
        sums[1] += ours[0]
        if ref == ours:
            equal += 1
        else:
            first = next(i for i in range(4) if ref[i] != ours[i])
            table.add_row(
                str(seed), repr(ref[0]), repr(ours[0]), f"{fields[first]} {ref[first] - ours[first]:+.3g}"
            )
    if table.row_count:
        console.print(table)
    n = len(seeds)
    console.print(f"bit-identical seeds (edge, normalizer edge, volumes): {equal} of {n}")
    console.print(f"mean edge: reference {sums[0] / n!r}, stratforge {sums[1] / n!r}")
    sys.exit(0 if equal == n and math.isfinite(sums[0]) else 1)


if __name__ == "__main__":
    main()
