"""Shared helpers for the Solidity tests: fixture paths, cached loading, instance capture."""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from stratforge.amm.compiler import CompileError, compile_strategy
from stratforge.amm.evm import EvmStrategy, EvmStrategySpec, NativeEvmStrategy
from stratforge.amm.solidity import EXAMPLES_DIR, LoadedStrategy, check_solidity, load_solidity_strategy

FIXTURES = Path(__file__).resolve().parent / "solidity"
STARTER = EXAMPLES_DIR / "StarterStrategy.sol"
VANILLA = EXAMPLES_DIR / "VanillaStrategy.sol"
DYNAMIC = EXAMPLES_DIR / "DynamicStrategy.sol"

HEADER = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AMMStrategyBase} from "./AMMStrategyBase.sol";
import {IAMMStrategy, TradeInfo} from "./IAMMStrategy.sol";
"""

HOOKS = """
    function afterInitialize(uint256, uint256) external override returns (uint256, uint256) {
        return (bpsToWad(30), bpsToWad(30));
    }

    function afterSwap(TradeInfo calldata) external override returns (uint256, uint256) {
        return (bpsToWad(30), bpsToWad(30));
    }

    function getName() external pure override returns (string memory) {
        return "T";
    }
"""


def strategy_source(body: str = "", hooks: str = HOOKS) -> str:
    """A complete strategy file: the header (5 lines + blank) then the contract with ``body``."""
    return HEADER + "\ncontract Strategy is AMMStrategyBase {\n" + body + hooks + "}\n"


@cache
def _prewarm() -> None:
    """Compile every fixture and example once, in parallel (each compile is its own node process),
    so that a cold bytecode cache costs one round of compiles instead of one per test."""

    def one(path: Path) -> None:
        with contextlib.suppress(CompileError):  # the test that loads it reports the error
            compile_strategy(path.read_text(), file_name=path.name)

    paths = sorted(FIXTURES.glob("*.sol")) + sorted(EXAMPLES_DIR.glob("*.sol"))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(one, paths))


@cache
def load(path: Path) -> EvmStrategySpec:
    _prewarm()
    return load_solidity_strategy(path)


def check(path: Path) -> LoadedStrategy:
    _prewarm()
    return check_solidity(path)


def fixture(name: str) -> EvmStrategySpec:
    return load(FIXTURES / name)


@dataclass(frozen=True)
class Capturing:
    """A spec that hands out instances of ``inner`` and keeps them, to read their counters."""

    inner: EvmStrategySpec
    created: list[NativeEvmStrategy | EvmStrategy] = field(default_factory=list, compare=False, hash=False)

    @property
    def name(self) -> str:
        return self.inner.name

    def create(self) -> NativeEvmStrategy | EvmStrategy:
        instance = self.inner.create()
        self.created.append(instance)
        return instance
