"""Native twins: a Solidity strategy family's arithmetic written again in the C core, for speed.

The explorer scores thousands of parameter sets of one family (the ``frontier`` template), and even
the core's EVM spends most of a call on what the bytecode does around the arithmetic. A twin
(``_frontier_twin.c``) computes the same hooks with the contract's integer semantics at a fraction
of the cost. It is an accelerator, never the authority:

* a :class:`TwinSpec` carries the patched contract (``exact``); when the twin meets anything it
  does not model exactly (a value of 2^128 or more, a call whose gas could reach the hook's limit)
  it raises ``TwinOutOfRange`` and the engine runs that simulation in the EVM from ``exact``;
* a twin serves only the template text it was written from (:data:`TWINS` is keyed by its sha256),
  so an edited template runs in the EVM until its twin is updated (a test pins the hash);
* before the explorer promotes a candidate scored by its twin, the rendered source is compiled and
  compared with it, per seed and bit for bit, through the EVM (:mod:`stratforge.explore.champion`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from stratforge.amm import _core
from stratforge.amm.evm import EvmStrategySpec
from stratforge.amm.strategy import Strategy

__all__ = ["TWINS", "TwinOutOfRange", "TwinSpec", "twin_for"]

TwinOutOfRange = _core.TwinOutOfRange


@dataclass(frozen=True)
class Twin:
    """A family's native implementation: the C type and the parameter order it takes."""

    family: str
    create: Callable[[tuple[int, ...]], Strategy]
    params: tuple[str, ...]


#: sha256 of a template's text -> its twin (the text of frontier.sol.template the C code mirrors)
TWINS: dict[str, Twin] = {
    "37ff9691ea03ec97e8c1e1307fa0f7d6329081bfd9ee4b130203430f99b5a031": Twin(
        "frontier", _core.FrontierTwin, tuple(_core.FrontierTwin.PARAMS)
    ),
}


def template_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TwinSpec:
    """A strategy run by its family's twin; ``exact`` is the same contract for the EVM."""

    exact: EvmStrategySpec
    family: str
    params: tuple[int, ...]  #: the contract's parameter words, in the twin's order

    @property
    def name(self) -> str:
        return self.exact.name

    def create(self) -> Strategy:
        return _BY_FAMILY[self.family].create(self.params)


_BY_FAMILY = {t.family: t for t in TWINS.values()}


def twin_for(template_text: str, words: Mapping[str, int], exact: EvmStrategySpec) -> TwinSpec | None:
    """The twin of ``exact`` (a template's contract with parameter words ``words``), or None when the
    template has no twin or a word does not fit the twin's 128 bits."""
    twin = TWINS.get(template_digest(template_text))
    if twin is None or set(words) != set(twin.params):
        return None
    values = tuple(int(words[name]) for name in twin.params)
    if any(not 0 <= v < 2**128 for v in values):
        return None
    return TwinSpec(exact, twin.family, values)
