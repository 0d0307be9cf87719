"""A template compiled once, whose parameters are patched into the runtime code: no solc per candidate.

A *patchable* template declares each parameter as a Solidity ``immutable`` (``uint256 immutable
FEE = {{FEE}};``). solc never folds an immutable into the code: every read is a ``PUSH32`` whose 32
data bytes the constructor fills in, and the compiler reports their offsets
(``immutableReferences``, see :attr:`CompiledContract.immutables`). So the template is validated and
compiled once, and a candidate's runtime code is that code with its values written at those offsets:
the same bytes the constructor of the rendered source would leave, bar the metadata tail.

Safety of the shortcut: the template's compiled code passed every bytecode check, and a patch only
changes ``PUSH32`` data (checked at build time), which no opcode scan looks at, so every patched
variant passes the same checks. :func:`check_identical` runs the rendered source through the full
validate -> compile path and compares per-seed edges with the patched spec, bit for bit.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from stratforge.amm.compiler import CompiledContract
from stratforge.amm.engine import run_batch
from stratforge.amm.evm import EvmStrategySpec, code_reads_gas
from stratforge.amm.solidity import check_solidity
from stratforge.amm.strategy import StrategySpec
from stratforge.amm.twins import TwinSpec, twin_for
from stratforge.explore.templates.templates import Template, TemplateError

_PUSH32 = 0x7F

__all__ = ["IdentityCheck", "PrecompiledTemplate", "check_identical", "check_spec_matches_source"]


@dataclass(frozen=True)
class PrecompiledTemplate:
    """A validated, compiled template and where each parameter's value lives in its runtime code."""

    template: Template
    compiled: CompiledContract
    offsets: Mapping[str, tuple[int, ...]]

    @classmethod
    def build(cls, template: Template, use_cache: bool = True) -> PrecompiledTemplate:
        """Validate and compile ``template`` once (at its defaults); raises TemplateError when a
        parameter is not an immutable (its value would be compiled into the code)."""
        loaded = check_solidity(template.render(None, template.name), use_cache=use_cache)
        compiled = loaded.compiled
        missing = [p for p in template.param_names if not compiled.immutables.get(p)]
        if missing:
            raise TemplateError(
                f"template {template.name}: parameters {missing} are not read as immutables, "
                "so they cannot be patched (declare them `uint256 immutable NAME = {{NAME}};`)"
            )
        code = compiled.runtime_code
        offsets = {p: tuple(compiled.immutables[p]) for p in template.param_names}
        for name, where in offsets.items():
            for start in where:
                if start < 1 or code[start - 1] != _PUSH32 or start + 32 > len(code):
                    raise TemplateError(
                        f"template {template.name}: {name} at byte {start} is not PUSH32 data"
                    )
        return cls(template, compiled, offsets)

    def words(self, params: Mapping[str, float] | None = None) -> dict[str, int]:
        """The uint256 each parameter holds for ``params`` (normalized like :meth:`Template.render`)."""
        values = self.template.normalize(params)
        out = {}
        for p in self.template.params:
            word = p.to_int(values[p.name])
            if not 0 <= word < 2**256:
                raise TemplateError(f"parameter {p.name}: {values[p.name]} does not fit a uint256")
            out[p.name] = word
        return out

    def runtime_code(self, params: Mapping[str, float] | None = None) -> bytes:
        """The runtime code for ``params``."""
        return self.patched(self.words(params))

    def patched(self, words: Mapping[str, int]) -> bytes:
        """The compiled code with each parameter's word (see :meth:`words`) written in."""
        code = bytearray(self.compiled.runtime_code)
        for name, word in words.items():
            data = word.to_bytes(32, "big")
            for start in self.offsets[name]:
                code[start : start + 32] = data
        return bytes(code)

    def spec(self, params: Mapping[str, float] | None = None, name: str | None = None) -> EvmStrategySpec:
        """A ready-to-run strategy for ``params`` (for :attr:`Candidate.spec`), without solc."""
        return self.contract(self.words(params), name)

    def contract(self, words: Mapping[str, int], name: str | None = None) -> EvmStrategySpec:
        """The contract holding ``words``, ready to run in the EVM."""
        code = self.patched(words)
        return EvmStrategySpec(
            runtime_code=code,
            name=name or self.template.name,
            source_hash="",
            reads_gas=code_reads_gas(code),
            compiler_version=self.compiled.compiler_version,
        )

    def render(
        self, params: Mapping[str, float] | None = None, strategy_name: str | None = None, twin: bool = True
    ) -> tuple[EvmStrategySpec | TwinSpec, str]:
        """(fastest spec, rendered Solidity source) for one candidate: the template's native twin
        when it has one (:mod:`stratforge.amm.twins`), else the patched contract, which carries the
        source's sha256 as a compiled one would."""
        name = strategy_name or self.template.name
        source = self.template.render(params, name)
        digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
        words = self.words(params)
        exact = dataclasses.replace(self.contract(words, name), source_hash=digest)
        fast = twin_for(self.template.text, words, exact) if twin else None
        return fast or exact, source


@dataclass(frozen=True)
class IdentityCheck:
    identical: bool
    seeds: tuple[int, ...]
    patched: np.ndarray
    compiled: np.ndarray


def check_spec_matches_source(
    spec: StrategySpec, source: str, seeds: Sequence[int], workers: int = 1
) -> IdentityCheck:
    """Score ``spec`` (e.g. a candidate's patched spec) and ``source`` through the full validate ->
    compile path on ``seeds``; ``identical`` when their per-seed edges are equal bit for bit.
    Raises StrategyRejected if the source is rejected. This is the check before a promotion."""
    full = check_solidity(source).spec
    seed_list = [int(s) for s in seeds]
    a = run_batch(spec, len(seed_list), seeds=seed_list, workers=workers).edge
    b = run_batch(full, len(seed_list), seeds=seed_list, workers=workers).edge
    return IdentityCheck(bool(np.array_equal(a, b)), tuple(seed_list), a, b)


def check_identical(
    pre: PrecompiledTemplate,
    params: Mapping[str, float] | None,
    seeds: Sequence[int],
    workers: int = 1,
    strategy_name: str | None = None,
) -> IdentityCheck:
    """:func:`check_spec_matches_source` for the spec :meth:`PrecompiledTemplate.render` gives
    (the native twin where the template has one) and the render of ``params``."""
    fast, source = pre.render(params, strategy_name)
    return check_spec_matches_source(fast, source, seeds, workers)
