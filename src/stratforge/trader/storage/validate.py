"""Boundary validation: a value that does not fit its column is an error *before* the insert.

Nothing is truncated or coerced; the caller gets :class:`StorageValueError` naming table, column and
the reason, and the session is left untouched so the write can be fixed and retried.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, event, inspect
from sqlalchemy.orm import Session

from stratforge.trader.storage.models import UTCDateTime


class StorageValueError(ValueError):
    """A value does not fit the column it is written to."""


def validate_row(obj: Any) -> None:
    """Check every mapped column of ``obj`` against its type, length, choices and nullability."""
    mapper = inspect(obj).mapper
    table = mapper.local_table.name
    choices: dict[str, tuple[str, ...]] = getattr(type(obj), "CHOICES", {})
    for attr in mapper.column_attrs:
        col = attr.columns[0]
        value = getattr(obj, attr.key)
        where = f"{table}.{col.name}"
        if value is None:
            has_default = col.default is not None or col.server_default is not None or col.primary_key
            if not col.nullable and not has_default:
                raise StorageValueError(f"{where} is required")
            continue
        ctype = col.type
        if isinstance(ctype, String):
            if not isinstance(value, str):
                raise StorageValueError(f"{where} must be a string, got {type(value).__name__}")
            if ctype.length is not None and len(value) > ctype.length:
                raise StorageValueError(
                    f"{where} is {len(value)} characters, the column holds at most {ctype.length}: "
                    f"{value[:60]!r}"
                )
            if "\x00" in value:
                raise StorageValueError(f"{where} contains a NUL character")
        elif isinstance(ctype, Float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise StorageValueError(f"{where} must be a number, got {type(value).__name__}")
            if not math.isfinite(float(value)):
                raise StorageValueError(f"{where} must be finite, got {value}")
        elif isinstance(ctype, Integer):
            if isinstance(value, bool) or not isinstance(value, int):
                raise StorageValueError(f"{where} must be an integer, got {type(value).__name__}")
            if not -(2**31) <= value < 2**31:
                raise StorageValueError(f"{where} = {value} does not fit a 32-bit integer")
        elif isinstance(ctype, UTCDateTime):
            if not isinstance(value, datetime):
                raise StorageValueError(f"{where} must be a datetime")
            if value.tzinfo is None:
                raise StorageValueError(f"{where} must be timezone-aware")
        elif isinstance(ctype, JSON):
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise StorageValueError(f"{where} is not strict JSON: {exc}") from None
        allowed = choices.get(col.name)
        if allowed is not None and value not in allowed:
            raise StorageValueError(f"{where} = {value!r} is not one of {allowed}")


def install(session_cls: type[Session] | Any) -> None:
    """Validate every new or modified row at flush time, before any SQL is emitted."""

    @event.listens_for(session_cls, "before_flush")
    def _check(session: Session, _ctx: Any, _instances: Any) -> None:
        for obj in list(session.new) + list(session.dirty):
            validate_row(obj)
