"""The differential harness: one call in the core's EVM and the same call in pyrevm's exact path.

The oracle is pyrevm with the storage in its database (a fresh transaction: cold slots, original =
current), i.e. the reference's per-call transaction. Both sides report the same five things.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyrevm import AccountInfo
from stratforge.amm._core import EvmMachine

from stratforge.amm.evm import CALLER_ADDRESS, STRATEGY_ADDRESS, failure_kind, fresh_evm

N_MACHINE_SLOTS = 64
_REVERT_OUTPUT = re.compile(r"output: 0x([0-9a-f]*)")


@dataclass(frozen=True)
class Outcome:
    kind: str | None  # None = success, else the failure kind
    output: bytes  # return data (success) or revert data
    gas_spent: int  # before the refund
    refund: int  # capped refund, 0 unless successful
    storage: dict[int, int]  # committed non-zero slots after the call


def oracle_call(code: bytes, storage: dict[int, int], calldata: bytes, gas: int) -> Outcome:
    """The reference's transaction, in pyrevm."""
    evm = fresh_evm(AccountInfo(nonce=1, code=code), storage)
    try:
        out = evm.message_call(CALLER_ADDRESS, STRATEGY_ADDRESS, calldata, 0, gas)
    except RuntimeError as exc:
        kind = failure_kind(exc)
        m = _REVERT_OUTPUT.search(str(exc)) if kind == "revert" else None
        output = bytes.fromhex(m.group(1)) if m else b""
        return Outcome(kind, output, evm.result.gas_used, 0, {k: v for k, v in storage.items() if v})
    res = evm.result
    after = {k: v for k in range(N_MACHINE_SLOTS) if (v := evm.storage(STRATEGY_ADDRESS, k))}
    return Outcome(None, bytes(out), res.gas_used + res.gas_refunded, res.gas_refunded, after)


def native_call(machine: EvmMachine, calldata: bytes, gas: int) -> Outcome:
    kind, output, spent, refund = machine.call(calldata, gas)
    return Outcome(kind, output, spent, refund, machine.storage)


def assert_same_calls(
    code: bytes, calls: list[tuple[bytes, int]], storage: dict[int, int] | None = None
) -> int:
    """Runs ``calls`` ((calldata, gas) pairs) in sequence on both sides, each on the state the
    previous one committed; asserts identical outcomes. Returns how many calls succeeded."""
    state = dict(storage or {})
    machine = EvmMachine(code, state)
    ok = 0
    for i, (calldata, gas) in enumerate(calls):
        want = oracle_call(code, state, calldata, gas)
        got = native_call(machine, calldata, gas)
        assert got == want, f"call {i} ({calldata[:4].hex()}, {len(calldata)} bytes): {got} != {want}"
        state = want.storage
        ok += want.kind is None
    return ok
