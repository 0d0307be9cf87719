"""Run compiled Solidity strategies in an EVM, charging gas the way the reference does.

The reference (``amm_sim_rs``, revm 18 with its default spec LATEST and default block and
transaction environment) runs every hook call as its own transaction against a committed state:
intrinsic gas (21,000 + calldata) comes out of the 250,000 limit, every storage slot starts cold
(2,100 for the first access) and the "original value" of a slot for SSTORE pricing is its value at
the start of the call. Two engines reproduce that transaction:

* **native** (default, ``EvmStrategySpec.engine == "native"``): the simulation core's own EVM
  (``_evm.c``), an interpreter run from the market loop with no Python crossing. Every call is a
  fresh transaction with exactly the reference's gas, results and environment values (see the C
  file's header). A call that reaches something it does not implement runs in pyrevm instead (the
  exact path below, counted in ``fallback_calls`` and the result's ``evm_fallback_calls``), and a
  strategy whose code contains such an opcode uses the pyrevm engine from the start
  (``engine == "pyrevm"``, ``engine_note`` says why). ~0.1-2 us per hook.
* **pyrevm** (the oracle, and the fallback): pyrevm 0.3.7 never finalises a transaction, so in one
  long-lived EVM slots stay warm and their original value stays at zero. It has two modes:

  - **warm** (~10 us per hook): one EVM per simulation, reused for every call, each call capped at
    ``FAST_PATH_GAS``. Relative to a fresh transaction, a warm call saves at most 4,900 gas per
    storage slot (2,100 cold access + 2,800 for an SSTORE reset priced as a dirty write; a strategy
    owns 32 slots) and the SSTORE stipend needs 2,300 left, so a call that completes (or reverts)
    within ``FAST_PATH_GAS`` warm would complete (or revert) within 250,000 in the reference, with
    the same return data. Caveat: a call that sets a slot back to its value at the start of the
    call and then changes it again pays another 2,800 per round trip in the reference.
  - **exact** (``exact_call``): a fresh EVM per call whose storage sits in its database (cold slots
    with original = current), i.e. exactly the reference's transaction. An instance switches to
    this mode for good at its first warm call that runs out of the capped gas, or from the start
    when the bytecode reads ``gasleft()``. Costs ~60-100 us per cheap hook.

  A per-simulation wall-clock budget guards the pyrevm engine against strategies that burn the full
  gas on every call: once spent, remaining hooks fail fast (kind ``timeout``). The native engine
  needs none: 250k gas bounds every call to about a millisecond.

Both engines place the constructor's runtime code at a fixed address with empty storage, as the
reference does (constructor writes land at the deployment address and are not carried over); an
optional ``initial_storage`` on the spec is applied after that, before ``afterInitialize``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from stratforge.amm import _core
from stratforge.amm.bytecode import find_opcodes
from stratforge.amm.strategy import MAX_FEE

try:  # pyrevm is the `evm` extra
    from pyrevm import EVM, AccountInfo, BlockEnv, CfgEnv, Env
except ImportError:  # pragma: no cover - exercised only without the extra
    EVM = AccountInfo = BlockEnv = CfgEnv = Env = None  # type: ignore[assignment,misc]

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
#: Opcodes the core's EVM leaves to pyrevm (calls, creates, other accounts, transient storage, ...).
NATIVE_UNSUPPORTED = frozenset(_core.evm_unsupported_opcodes())

#: The reference's block and chain environment: revm 18's defaults (Env::default()), which the
#: reference never changes. The core's EVM hard-codes the same values; the transaction itself
#: (caller = origin = CALLER_ADDRESS, value 0, gas price 0) is set per call.
BLOCK_ENV = {
    "number": 0,
    "coinbase": "0x" + "00" * 20,
    "timestamp": 1,
    "difficulty": 0,
    "prevrandao": bytes(32),
    "basefee": 0,
    "gas_limit": 2**256 - 1,
    "excess_blob_gas": 0,
}
CHAIN_ID = 1
#: pyrevm's spec: its default is SHANGHAI; revm 18's LATEST has Cancun's opcodes (TLOAD, TSTORE,
#: MCOPY, BLOBBASEFEE) and no gas change for a plain call after that, so CANCUN is the match.
PYREVM_SPEC = "CANCUN"

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
    return bool(find_opcodes(code, frozenset((_GAS_OPCODE,))))


def new_pyrevm() -> EVM:
    """An empty pyrevm EVM with the reference's environment."""
    env = Env(cfg=CfgEnv(chain_id=CHAIN_ID), block=BlockEnv(**BLOCK_ENV))
    return EVM(env=env, spec_id=PYREVM_SPEC)


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
    evm = new_pyrevm()
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


ENGINES = ("native", "pyrevm")


@dataclass(frozen=True)
class EvmStrategySpec:
    """A deployed Solidity strategy: picklable, builds a fresh EVM instance per simulation.

    Like the reference, the runtime code returned by the constructor is placed at a fixed address
    with empty storage (constructor writes to storage do not survive; initialise in afterInitialize).
    ``initial_storage`` ((slot, value) pairs; see ``with_storage``) is written after that, before
    ``afterInitialize``, in both engines: a way to set a strategy's parameters without recompiling.
    """

    runtime_code: bytes
    name: str
    source_hash: str = ""
    reads_gas: bool = False
    sim_timeout_s: float = DEFAULT_SIM_TIMEOUT_S
    #: Force the exact path for every call of the pyrevm engine (used by tests and benchmarks).
    always_exact: bool = False
    compiler_version: str = ""
    #: "native" (the core's EVM) or "pyrevm"; see the module docstring.
    engine: str = "native"
    #: Why the engine is pyrevm when the loader chose it.
    engine_note: str = ""
    initial_storage: tuple[tuple[int, int], ...] = ()
    #: The pyrevm engine's wall clock for its per-simulation budget (injectable for tests).
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        for slot, value in self.initial_storage:
            if not 0 <= slot < N_SLOTS or not 0 <= value < 2**256:
                raise ValueError(f"initial storage needs slots 0..{N_SLOTS - 1} and uint256 values")

    @classmethod
    def from_creation_code(
        cls, creation_code: bytes, source_hash: str = "", name: str | None = None, **kwargs: object
    ) -> EvmStrategySpec:
        """Run the constructor once (10M gas, as the reference) and keep the runtime code."""
        _require_pyrevm()
        evm = new_pyrevm()
        try:
            address = evm.deploy(CALLER_ADDRESS, creation_code, 0, GAS_LIMIT_DEPLOY)
        except RuntimeError as exc:
            raise StrategyError(f"deployment failed ({failure_kind(exc)}): {str(exc)[:200]}") from exc
        code = bytes(evm.get_code(address) or b"")
        # revm 8 pads analysed code with 33 zero bytes (STOPs); drop them to keep the exact bytes.
        code = code[:-33] if code.endswith(b"\x00" * 33) else code
        if not code:
            raise StrategyError("deployment returned no runtime code")
        unsupported = find_opcodes(code, NATIVE_UNSUPPORTED)
        if unsupported and "engine" not in kwargs:
            pc, op = unsupported[0]
            kwargs["engine"] = "pyrevm"
            kwargs["engine_note"] = f"opcode 0x{op:02x} at byte 0x{pc:x} is not implemented by the core's EVM"
        spec = cls(code, name or "", source_hash, code_reads_gas(code), **kwargs)  # type: ignore[arg-type]
        return spec if name is not None else dataclasses.replace(spec, name=spec._fetch_name())

    def _fetch_name(self) -> str:
        evm = fresh_evm(AccountInfo(nonce=1, code=self.runtime_code), {})
        try:
            out = evm.message_call(CALLER_ADDRESS, STRATEGY_ADDRESS, SEL_GET_NAME, 0, GAS_LIMIT_NAME)
        except RuntimeError:
            return "Unknown"
        return decode_string(bytes(out)) or "Unknown"

    def with_storage(self, storage: Mapping[int, int]) -> EvmStrategySpec:
        """This strategy with ``storage`` ({slot: value}, slots 0..31) written before afterInitialize."""
        return dataclasses.replace(
            self, initial_storage=tuple(sorted((int(k), int(v)) for k, v in storage.items()))
        )

    def with_engine(self, engine: str) -> EvmStrategySpec:
        return dataclasses.replace(self, engine=engine)

    def create(self) -> NativeEvmStrategy | EvmStrategy:
        return NativeEvmStrategy(self) if self.engine == "native" else EvmStrategy(self)


class NativeEvmStrategy(_core.EvmMachine):
    """One live strategy for one simulation in the core's EVM.

    The compiled core runs ``afterSwap`` itself (no Python is involved); the methods here serve
    ``afterInitialize``, Python callers and the per-call pyrevm fallback. Counters live in C:
    ``hook_calls``, ``failures`` (by kind), ``fallback_calls``; ``storage`` is the committed state.
    """

    def __init__(self, spec: EvmStrategySpec) -> None:
        super().__init__(spec.runtime_code, dict(spec.initial_storage))
        self.spec = spec
        self._info: AccountInfo | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def exact_mode(self) -> bool:
        return True  # every call is a fresh transaction

    def after_initialize(self, initial_x: int, initial_y: int) -> tuple[int, int]:
        """Opening fees; raises StrategyError when the hook fails in any way."""
        fees = self.hook(pack_after_initialize(initial_x, initial_y), GAS_LIMIT_INIT, count=False)
        if isinstance(fees, tuple):
            return fees
        raise StrategyError(f"afterInitialize failed: {fees.replace('_', ' ')}")

    def after_swap(
        self, is_buy: bool, amount_x: int, amount_y: int, timestamp: int, reserve_x: int, reserve_y: int
    ) -> tuple[int, int] | None:
        """The StrategySpec protocol's hook (the core runs afterSwap in C instead)."""
        try:
            calldata = pack_after_swap(is_buy, amount_x, amount_y, timestamp, reserve_x, reserve_y)
        except (OverflowError, AttributeError, TypeError):
            return None
        fees = self.hook(calldata, GAS_LIMIT_SWAP)
        return fees if isinstance(fees, tuple) else None

    def _fallback(self, calldata: bytes, gas: int) -> tuple[str | None, bytes]:
        """Called by the C machine for a call it cannot run: the exact pyrevm transaction."""
        if self._info is None:
            _require_pyrevm()
            self._info = AccountInfo(nonce=1, code=self.spec.runtime_code)
        outcome = exact_call(self._info, self.storage, calldata, gas)
        if outcome.failure is None:
            self.storage = outcome.storage
        return outcome.failure, outcome.output or b""


@dataclass
class EvmStrategy:
    """One live strategy for one simulation in pyrevm (see the module docstring for the two modes)."""

    spec: EvmStrategySpec
    failures: dict[str, int] = field(default_factory=dict)
    hook_calls: int = 0
    exact_calls: int = 0

    def __post_init__(self) -> None:
        _require_pyrevm()
        self._info = AccountInfo(nonce=1, code=self.spec.runtime_code)
        self._exact = self.spec.always_exact or self.spec.reads_gas
        self._storage: dict[int, int] = dict(self.spec.initial_storage)
        self._evm = fresh_evm(self._info, self._storage)
        self._call = self._evm.message_call
        self._clock = self.spec.clock
        self._deadline = self._clock() + self.spec.sim_timeout_s
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
                if not self.hook_calls & 63 and self._clock() > self._deadline:
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
        if self._clock() > self._deadline:
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
