"""The one Solidity comment/string scanner: which parts of a source are code.

``amm.validate`` blanks comments and strings before matching its rules, the template extractor
looks for numeric literals only in code, and the LLM answer extractor balances braces outside
comments and strings; all three read the source through :func:`segments`, so a ``//`` inside a
string or a quote inside a comment means the same thing everywhere.

Rules (Solidity's): ``//`` runs to the end of the line, ``/* ... */`` to its closer (or the end of
the file), a string starts with ``"`` or ``'``, honours backslash escapes and ends at its closing
quote or, unterminated, at the end of the line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

Kind = Literal["code", "comment", "string"]

__all__ = ["Kind", "blank", "code_mask", "segments"]


def segments(source: str) -> Iterator[tuple[int, int, Kind]]:
    """``(start, end, kind)`` spans covering ``source`` in order; a string span includes its quotes."""
    i, n, code_start = 0, len(source), 0
    while i < n:
        c = source[i]
        if c == "/" and source.startswith(("//", "/*"), i):
            if source[i + 1] == "/":
                end = source.find("\n", i)
                end = n if end < 0 else end
            else:
                end = source.find("*/", i + 2)
                end = n if end < 0 else end + 2
            kind: Kind = "comment"
        elif c in "\"'":
            j = i + 1
            while j < n and source[j] != c and source[j] != "\n":
                j += 2 if source[j] == "\\" else 1
            end = min(n, j + 1) if j < n and source[j] == c else min(j, n)
            kind = "string"
        else:
            i += 1
            continue
        if code_start < i:
            yield code_start, i, "code"
        yield i, end, kind
        i = code_start = end
    if code_start < n:
        yield code_start, n, "code"


_NOT_NEWLINE = re.compile(r"[^\n]")


def blank(source: str, *, strings: bool = True) -> str:
    """``source`` with comments (and, with ``strings``, string contents) replaced by spaces.

    Lengths and newlines are kept, so offsets still map to the same line; string quotes stay."""
    out: list[str] = []
    for start, end, kind in segments(source):
        text = source[start:end]
        if kind == "comment":
            text = _NOT_NEWLINE.sub(" ", text)
        elif kind == "string" and strings:
            closed = len(text) > 1 and text[-1] == text[0]
            body = text[1:-1] if closed else text[1:]
            text = text[0] + _NOT_NEWLINE.sub(" ", body) + (text[-1] if closed else "")
        out.append(text)
    return "".join(out)


def code_mask(source: str) -> list[bool]:
    """Per character: True when it is code (outside every comment and string)."""
    mask = [True] * len(source)
    for start, end, kind in segments(source):
        if kind != "code":
            mask[start:end] = [False] * (end - start)
    return mask
