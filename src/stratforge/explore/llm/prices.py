"""Model prices: the dated table shipped in ``prices.toml``, overridable by a user's TOML file.

Used only when a backend reports no cost of its own (the claude CLI and OpenRouter do). A name is
matched exactly, then without a provider prefix (``anthropic/claude-sonnet-4-5`` on OpenRouter), a
trailing release date (``claude-sonnet-4-5-20250929``, ``gpt-4o-2024-08-06``) or a context tag
(``claude-opus-4-6[1m]``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from stratforge.explore.llm.types import LLMConfigError

SHIPPED = Path(__file__).with_name("prices.toml")
_DATE = re.compile(r"-(20\d{6}|20\d{2}-\d{2}-\d{2})$")


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None

    def cost_usd(
        self,
        input_tokens: int,
        output_tokens: int,
        *,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float:
        """``input_tokens`` is the total prompt size; the cached parts of it are priced at their rates."""
        plain = max(0, input_tokens - cache_read_tokens - cache_write_tokens)
        read = self.input if self.cache_read is None else self.cache_read
        write = self.input if self.cache_write is None else self.cache_write
        total = plain * self.input + cache_read_tokens * read + cache_write_tokens * write
        return (total + output_tokens * self.output) / 1_000_000


@dataclass(frozen=True)
class PriceTable:
    as_of: str
    models: dict[str, Price]

    def lookup(self, model: str) -> Price | None:
        for name in _candidates(model):
            if name in self.models:
                return self.models[name]
        return None


def _candidates(model: str) -> list[str]:
    name = model.strip().lower()
    out = [name]
    name = name.split("/", 1)[1] if "/" in name else name
    name = re.sub(r"\[[^\]]*\]$", "", name)
    out.append(name)
    out.append(_DATE.sub("", name))
    return out


def _parse(path: Path) -> PriceTable:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LLMConfigError(f"price file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise LLMConfigError(f"invalid TOML in price file {path}: {exc}") from None
    models: dict[str, Price] = {}
    for name, row in (data.get("models") or {}).items():
        try:
            models[name.lower()] = Price(**{k: float(v) for k, v in row.items()})
        except (TypeError, ValueError) as exc:
            raise LLMConfigError(f"price file {path}: bad entry for {name!r}: {exc}") from None
    return PriceTable(str(data.get("as_of", "unknown")), models)


@lru_cache(maxsize=8)
def load_prices(override: str | None = None) -> PriceTable:
    """The shipped table, with the entries of ``override`` (a TOML file of the same shape) on top."""
    table = _parse(SHIPPED)
    if not override:
        return table
    extra = _parse(Path(override))
    return PriceTable(f"{table.as_of} + {override} ({extra.as_of})", {**table.models, **extra.models})
