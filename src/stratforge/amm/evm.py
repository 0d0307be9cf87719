"""Run compiled Solidity strategies in an EVM (pyrevm), charging gas the way the reference does.

The reference runs every hook call as its own transaction against a committed state: intrinsic gas
(21,000 + calldata) comes out of the 250,000 limit, every storage slot starts cold (2,100 for the
first access) and the "original value" of a slot for SSTORE pricing is its value at the start of
the call. pyrevm 0.3.7 never finalises a transaction, so in one long-lived EVM slots stay warm and
their original value stays at zero: repeated calls there are cheaper than the reference's.

Two execution modes give the reference's outcome:

* **warm** (fast path, ~10 us per hook): one EVM per simulation, reused for every call, each call
  capped at ``FAST_PATH_GAS``. Relative to a fresh transaction, a warm call saves at most 4,900 gas
  per storage slot (2,100 cold access + 2,800 for an SSTORE reset priced as a dirty write; a
  strategy owns 32 slots) and the SSTORE stipend needs 2,300 left, so a call that completes (or
  reverts) within ``FAST_PATH_GAS`` warm would complete (or revert) within 250,000 in the reference,
  with the same return data. Caveat: a call that sets a slot back to its value at the start of the
  call and then changes it again pays another 2,800 per round trip in the reference; code doing that
  many times in one call near the limit could differ.
* **exact** (fallback): a fresh EVM per call whose storage sits in its database (cold slots with
  original = current), i.e. exactly the reference's transaction. An instance switches to this mode
  for good at its first warm call that runs out of the capped gas (the failed call left the state
  untouched, so it moves over as is), or from the start when the bytecode reads ``gasleft()``.
  Costs ~60-100 us per cheap hook.

A per-simulation wall-clock budget guards against strategies that burn the full gas on every call:
once spent, remaining hooks fail fast (kind ``timeout``) so the simulation still finishes.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field

from stratforge.amm.strategy import MAX_FEE

try:  # pyrevm is the `evm` extra
    from pyrevm import EVM, AccountInfo
except ImportError:  # pragma: no cover - exercised only without the extra
    EVM = AccountInfo = None  # type: ignore[assignment,misc]

GAS_LIMIT_DEPLOY = 10_000_000
GAS_LIMIT_INIT = 250_000
GAS_LIMIT_SWAP = 250_000
GAS_LIMIT_NAME = 50_000
#: Upper bound on (fresh-transaction gas - warm gas) for one call: 32 slots x (2,100 cold + 2,800
#: SSTORE reset instead of dirty write), plus the 2,300 gas an SSTORE needs left.
WARM_GAS_MARGIN = 32 * (2_100 + 2_800) + 2_300
FAST_PATH_GAS = GAS_LIMIT_SWAP - WARM_GAS_MARGIN
N_SLOTS = 32

STRATEGY_ADDRESS = "0x1000000000000000000000000000000000000001"
CALLER_ADDRESS = "0x2000000000000000000000000000000000000002"
SEL_AFTER_INITIALIZE = bytes.fromhex("837aef47")
SEL_AFTER_SWAP = bytes.fromhex("c2babb57")
SEL_GET_NAME = bytes.fromhex("17d7de7c")
_MAX_FEE_WORD = MAX_FEE.to_bytes(32, "big")
_SWAP_PREFIX = (SEL_AFTER_SWAP + bytes(32), SEL_AFTER_SWAP + (1).to_bytes(32, "big"))
_GAS_OPCODE = 0x5A

FAILURE_KINDS = ("revert", "out_of_gas", "halt", "malformed_return", "fee_above_max", "timeout", "error")
DEFAULT_SIM_TIMEOUT_S = float(os.environ.get("STRATFORGE_EVM_SIM_TIMEOUT", "300"))


class StrategyError(RuntimeError):
    """A strategy cannot run: deployment or afterInitialize failed."""


def _require_pyrevm() -> None:
    if EVM is None:
        raise StrategyError("Solidity strategies need pyrevm: pip install 'stratforge[evm]'")


def failure_kind(exc: BaseException) -> str:
    """Classify a pyrevm error message into one of FAILURE_KINDS."""
    msg = str(exc)
    if msg.startswith("Revert"):
        return "revert"
    if "OutOfGas" in msg or "CallGasCostMoreThanGasLimit" in msg:
        return "out_of_gas"
    if msg.startswith("Halt"):
        return "halt"
    return "error"


def code_reads_gas(code: bytes) -> bool:
    """Whether GAS (gasleft()) occurs as an instruction, outside PUSH data and the metadata tail."""
    end = len(code)
    if end >= 2:
        meta = int.from_bytes(code[-2:], "big")
        if meta + 2 <= end:
            end -= meta + 2
    i = 0
    while i < end:
        op = code[i]
        if op == _GAS_OPCODE:
            return True
        i += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)
    return False


def decode_string(data: bytes) -> str | None:
    """ABI-decode a single `string` return value."""
    if len(data) < 64:
        return None
    offset = int.from_bytes(data[0:32], "big")
    if offset + 32 > len(data):
        return None
    length = int.from_bytes(data[offset : offset + 32], "big")
    if offset + 32 + length > len(data):
        return None
    try:
        return data[offset + 32 : offset + 32 + length].decode("utf-8")
    except UnicodeDecodeError:
        return None


def decode_fee_pair(data: bytes) -> tuple[int, int] | str:
    """(bid, ask) from hook return data, or the failure kind when it is unusable."""
    if len(data) < 64:
        return "malformed_return"
    if data[0:32] > _MAX_FEE_WORD or data[32:64] > _MAX_FEE_WORD:
        return "fee_above_max"
    return int.from_bytes(data[0:32], "big"), int.from_bytes(data[32:64], "big")


def pack_after_swap(
    is_buy: bool, amount_x: int, amount_y: int, timestamp: int, reserve_x: int, reserve_y: int
) -> bytes:
    """ABI calldata of afterSwap(TradeInfo) (196 bytes), packed by hand: eth_abi is ~3x slower."""
    return (
        _SWAP_PREFIX[1 if is_buy else 0]
        + amount_x.to_bytes(32, "big")
        + amount_y.to_bytes(32, "big")
        + timestamp.to_bytes(32, "big")
        + reserve_x.to_bytes(32, "big")
        + reserve_y.to_bytes(32, "big")
    )


def pack_after_initialize(initial_x: int, initial_y: int) -> bytes:
    return SEL_AFTER_INITIALIZE + initial_x.to_bytes(32, "big") + initial_y.to_bytes(32, "big")


def fresh_evm(code_info: AccountInfo, storage: dict[int, int]) -> EVM:
    """An EVM whose strategy account holds ``storage`` in its database, as after a committed
    transaction: every slot cold, original value = current value.

    ``insert_account_storage`` only writes the database while the account is not loaded (it then
    loads it); reverting a checkpoint around each insert unloads the account again.
    """
    evm = EVM()
    evm.insert_account_info(STRATEGY_ADDRESS, code_info)
    for slot, value in storage.items():
        checkpoint = evm.snapshot()
        evm.insert_account_storage(STRATEGY_ADDRESS, slot, value)
        evm.revert(checkpoint)
    return evm


def read_storage(evm: EVM) -> dict[int, int]:
    """The strategy's non-zero slots (the storage layout check guarantees only slots 0..31 exist)."""
    out = {}
    for slot in range(N_SLOTS):
        value = evm.storage(STRATEGY_ADDRESS, slot)
        if value:
            out[slot] = value
    return out


@dataclass(frozen=True)
class CallOutcome:
    """One exact (fresh-transaction) call."""

    output: bytes | None
    failure: str | None
    gas_used: int
    storage: dict[int, int]


def exact_call(code_info: AccountInfo, storage: dict[int, int], calldata: bytes, gas: int) -> CallOutcome:
    """Run one hook as the reference does: a fresh transaction on committed ``storage``."""
    evm = fresh_evm(code_info, storage)
    try:
        out = evm.message_call(CALLER_ADDRESS, STRATEGY_ADDRESS, calldata, 0, gas)
    except RuntimeError as exc:
        res = evm.result
        return CallOutcome(None, failure_kind(exc), res.gas_used if res else gas, storage)
    res = evm.result
    return CallOutcome(bytes(out), None, res.gas_used + res.gas_refunded, read_storage(evm))


@dataclass(frozen=True)
class EvmStrategySpec:
    """A deployed Solidity strategy: picklable, builds a fresh EVM instance per simulation.

    Like the reference, the runtime code returned by the constructor is placed at a fixed address
    with empty storage (constructor writes to storage do not survive; initialise in afterInitialize).
    """

    runtime_code: bytes
    name: str
    source_hash: str = ""
    reads_gas: bool = False
    sim_timeout_s: float = DEFAULT_SIM_TIMEOUT_S
    #: Force the exact path for every call (used by tests and benchmarks).
    always_exact: bool = False
    compiler_version: str = ""

    @classmethod
    def from_creation_code(
        cls, creation_code: bytes, source_hash: str = "", name: str | None = None, **kwargs: object
    ) -> EvmStrategySpec:
        """Run the constructor once (10M gas, as the reference) and keep the runtime code."""
        _require_pyrevm()
        evm = EVM()
        try:
            address = evm.deploy(CALLER_ADDRESS, creation_code, 0, GAS_LIMIT_DEPLOY)
        except RuntimeError as exc:
            raise StrategyError(f"deployment failed ({failure_kind(exc)}): {str(exc)[:200]}") from exc
        code = bytes(evm.get_code(address) or b"")
        # revm 8 pads analysed code with 33 zero bytes (STOPs); drop them to keep the exact bytes.
        code = code[:-33] if code.endswith(b"\x00" * 33) else code
        if not code:
            raise StrategyError("deployment returned no runtime code")
        spec = cls(code, name or "", source_hash, code_reads_gas(code), **kwargs)  # type: ignore[arg-type]
        return spec if name is not None else dataclasses.replace(spec, name=spec._fetch_name())

    def _fetch_name(self) -> str:
        evm = fresh_evm(AccountInfo(nonce=1, code=self.runtime_code), {})
        try:
            out = evm.message_call(CALLER_ADDRESS, STRATEGY_ADDRESS, SEL_GET_NAME, 0, GAS_LIMIT_NAME)
        except RuntimeError:
            return "Unknown"
        return decode_string(bytes(out)) or "Unknown"

    def create(self) -> EvmStrategy:
        return EvmStrategy(self)


@dataclass
class EvmStrategy:
    """One live strategy for one simulation (see the module docstring for the two modes)."""

    spec: EvmStrategySpec
    failures: dict[str, int] = field(default_factory=dict)
    hook_calls: int = 0
    exact_calls: int = 0

    def __post_init__(self) -> None:
        _require_pyrevm()
        self._info = AccountInfo(nonce=1, code=self.spec.runtime_code)
        self._exact = self.spec.always_exact or self.spec.reads_gas
        self._storage: dict[int, int] = {}
        self._evm = fresh_evm(self._info, {})
        self._call = self._evm.message_call
        self._deadline = time.monotonic() + self.spec.sim_timeout_s
        self.mode_switch_at: int | None = None
        self._timed_out = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def exact_mode(self) -> bool:
        return self._exact

    def _fail(self, kind: str) -> None:
        self.failures[kind] = self.failures.get(kind, 0) + 1

    # -- hooks ------------------------------------------------------------------------------

    def after_initialize(self, initial_x: int, initial_y: int) -> tuple[int, int]:
        """Opening fees; raises StrategyError when the hook fails in any way."""
        out, kind = self._run(pack_after_initialize(initial_x, initial_y), GAS_LIMIT_INIT)
        if kind is None:
            fees = decode_fee_pair(out)
            if isinstance(fees, tuple):
                return fees
            kind = fees
        raise StrategyError(f"afterInitialize failed: {kind.replace('_', ' ')}")

    def after_swap_raw(self, calldata: bytes) -> bytes:
        """Hot path called from the compiled core with ready afterSwap calldata; returns the hook's
        return data (the core decodes and range-checks it) or b"" on failure."""
        self.hook_calls += 1
        if self._timed_out:
            self._fail("timeout")
            return b""
        if not self._exact:
            try:
                # Warm gas is capped at FAST_PATH_GAS: completing within it proves the reference's
                # fresh transaction completes within 250k too, so no gas bookkeeping is needed here.
                out = self._call(CALLER_ADDRESS, STRATEGY_ADDRESS, calldata, 0, FAST_PATH_GAS)
            except RuntimeError as exc:
                kind = failure_kind(exc)
                if kind in ("revert", "halt"):
                    self._fail(kind)  # deterministic, and reached well within the limit
                    return b""
                self._switch_to_exact()  # out of warm gas: only the exact model can tell
            else:
                if len(out) < 64 or out[0:32] > _MAX_FEE_WORD or out[32:64] > _MAX_FEE_WORD:
                    self._fail("malformed_return" if len(out) < 64 else "fee_above_max")
                if not self.hook_calls & 63 and time.monotonic() > self._deadline:
                    self._timed_out = True  # the next calls fail fast
                return out
        out, kind = self._run(calldata, GAS_LIMIT_SWAP)
        if kind is not None:
            self._fail(kind)
            return b""
        fees = decode_fee_pair(out)
        if isinstance(fees, str):
            self._fail(fees)
        return out

    def after_swap(
        self, is_buy: bool, amount_x: int, amount_y: int, timestamp: int, reserve_x: int, reserve_y: int
    ) -> tuple[int, int] | None:
        """The StrategySpec protocol's hook (the core prefers ``after_swap_raw``)."""
        try:
            calldata = pack_after_swap(is_buy, amount_x, amount_y, timestamp, reserve_x, reserve_y)
        except (OverflowError, AttributeError, TypeError):
            self._fail("error")
            return None
        fees = decode_fee_pair(self.after_swap_raw(calldata))
        return fees if isinstance(fees, tuple) else None

    # -- modes --------------------------------------------------------------------------------

    def _switch_to_exact(self) -> None:
        """Leave the warm EVM for good. Only called after a failed warm call, which left the state
        as it was before the call: that state moves into the exact model."""
        self._storage = read_storage(self._evm)
        self._exact = True
        self.mode_switch_at = self.hook_calls

    def _run(self, calldata: bytes, gas: int) -> tuple[bytes, str | None]:
        """One call in the current mode: (return data, failure kind or None)."""
        if time.monotonic() > self._deadline:
            self._timed_out = True
            return b"", "timeout"
        if self._exact:
            self.exact_calls += 1
            outcome = exact_call(self._info, self._storage, calldata, gas)
            if outcome.failure is not None:
                return b"", outcome.failure
            self._storage = outcome.storage
            return outcome.output or b"", None
        try:
            out = self._call(CALLER_ADDRESS, STRATEGY_ADDRESS, calldata, 0, min(gas, FAST_PATH_GAS))
        except RuntimeError as exc:
            kind = failure_kind(exc)
            if kind in ("revert", "halt"):
                return b"", kind
            self._switch_to_exact()
            return self._run(calldata, gas)
        return bytes(out), None
