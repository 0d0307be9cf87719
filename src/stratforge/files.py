"""Crash-safe file writes shared by every part of stratforge."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory, fsync and a rename.

    A reader, or a process killed mid-write, sees either the old file or the complete new one.
    The temporary file is named ``.<name>.<random>.tmp`` so leftovers are easy to recognise.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, payload: Any, **dump_options: Any) -> None:
    """``atomic_write_text`` of ``json.dumps(payload, **dump_options)`` (indent 2 by default)."""
    dump_options.setdefault("indent", 2)
    atomic_write_text(path, json.dumps(payload, **dump_options))
