"""Walking EVM bytecode: the one place that knows where instructions start.

An instruction is one opcode byte, followed by 1-32 bytes of immediate data for PUSH1..PUSH32
(0x60..0x7f); those data bytes are not instructions. solc appends CBOR metadata to the code, its
length in the last two bytes; it is data too. The validator (forbidden opcodes) and the EVM loader
(does the code read ``gasleft()``, does it use an opcode the core's EVM leaves to pyrevm) both ask
"which opcodes occur as instructions", and both use this module.

    >>> list(instructions(bytes([0x60, 0x5A, 0x5A, 0x00])))
    [(0, 96), (2, 90), (3, 0)]
"""

from __future__ import annotations

from collections.abc import Iterator

PUSH1, PUSH32 = 0x60, 0x7F


def push_size(op: int) -> int:
    """Immediate bytes following ``op`` (0 unless it is PUSH1..PUSH32)."""
    return op - 0x5F if PUSH1 <= op <= PUSH32 else 0


def executable_end(code: bytes) -> int:
    """End of the executable part: solc appends CBOR metadata whose length is in the last 2 bytes."""
    end = len(code)
    if end >= 2:
        meta = int.from_bytes(code[-2:], "big")
        if meta + 2 <= end:
            end -= meta + 2
    return end


def instructions(code: bytes) -> Iterator[tuple[int, int]]:
    """(byte offset, opcode) of every instruction before the metadata tail."""
    i, end = 0, executable_end(code)
    while i < end:
        op = code[i]
        yield i, op
        i += 1 + push_size(op)


def find_opcodes(code: bytes, opcodes: set[int] | frozenset[int]) -> list[tuple[int, int]]:
    """(byte offset, opcode) of each instruction whose opcode is in ``opcodes``."""
    return [(pc, op) for pc, op in instructions(code) if op in opcodes]


__all__ = ["executable_end", "find_opcodes", "instructions", "push_size"]
