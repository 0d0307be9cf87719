"""Find the live 15-minute up/down markets: Gamma event by slug, then the CLOB market for token ids.

Slug ``{asset}-updown-15m-{window_start}`` with windows aligned to 900 s. Gamma ``GET /events?slug=``
returns a list of events whose ``markets[].conditionId`` names the CLOB market; CLOB
``GET /markets/{condition_id}`` lists ``tokens`` with ``outcome`` "Up"/"Down", ``token_id`` and,
once the market resolved, ``winner: true`` on the winning token (the settlement poll's fallback to
the websocket's ``market_resolved``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import httpx

from stratforge.trader.fees import FeeSchedule, schedule_from_metadata
from stratforge.trader.markets.messages import WINDOW_SECONDS, MarketInfo

log = logging.getLogger(__name__)

GAMMA_URL = "https://gamma-api.polymarket.com"
CLOB_URL = "https://clob.polymarket.com"


@dataclass
class DiscoveryConfig:
    gamma_url: str = GAMMA_URL
    clob_url: str = CLOB_URL
    timeout: float = 10.0
    windows_ahead: int = 1  # also look up the next window(s) so they are ready at the boundary


def window_start(now: float) -> int:
    return int(now // WINDOW_SECONDS) * WINDOW_SECONDS


def slug_for(asset: str, start: int) -> str:
    return f"{asset.lower()}-updown-15m-{start}"


def discover(
    assets: list[str], now: float, config: DiscoveryConfig | None = None, client: httpx.Client | None = None
) -> list[MarketInfo]:
    """Markets of the current (and next) window for each asset; missing or closed ones are skipped."""
    cfg = config or DiscoveryConfig()
    own = client is None
    http = client or httpx.Client(timeout=cfg.timeout)
    found: list[MarketInfo] = []
    try:
        base = window_start(now)
        for asset in assets:
            for k in range(cfg.windows_ahead + 1):
                start = base + k * WINDOW_SECONDS
                info = _lookup(http, cfg, asset.upper(), start)
                if info is not None:
                    found.append(info)
    finally:
        if own:
            http.close()
    return found


def _lookup(http: httpx.Client, cfg: DiscoveryConfig, asset: str, start: int) -> MarketInfo | None:
    slug = slug_for(asset, start)
    try:
        resp = http.get(f"{cfg.gamma_url}/events", params={"slug": slug})
        resp.raise_for_status()
        events = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("gamma lookup %s failed: %s", slug, exc)
        return None
    if not events:
        return None
    event = events[0]
    gamma_market = next((m for m in event.get("markets", []) if m.get("conditionId")), {})
    condition_id = gamma_market.get("conditionId")
    if not condition_id or event.get("closed"):
        return None
    try:
        resp = http.get(f"{cfg.clob_url}/markets/{condition_id}")
        resp.raise_for_status()
        market = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("clob market %s failed: %s", condition_id, exc)
        return None
    if market.get("closed") or not market.get("active", True):
        return None
    return _market_info(market, asset, start, schedule_from_metadata(gamma_market))


def _market_info(
    market: dict[str, Any], asset: str, start: int, fees: FeeSchedule | None = None
) -> MarketInfo | None:
    """``fees``: the market's schedule from Gamma (``feeSchedule``); None leaves the default."""
    tokens = {str(t.get("outcome", "")).lower(): str(t.get("token_id")) for t in market.get("tokens", [])}
    if "up" not in tokens or "down" not in tokens:
        log.warning("market %s has no Up/Down tokens: %s", market.get("condition_id"), list(tokens))
        return None
    return MarketInfo(
        asset, float(start), str(market["condition_id"]), tokens["up"], tokens["down"], fees=fees
    )


def _clob_market(condition_id: str, cfg: DiscoveryConfig) -> dict[str, Any] | None:
    try:
        with httpx.Client(timeout=cfg.timeout) as http:
            resp = http.get(f"{cfg.clob_url}/markets/{condition_id}")
            resp.raise_for_status()
            return resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("clob market %s failed: %s", condition_id, exc)
        return None


def fetch_market(condition_id: str, config: DiscoveryConfig | None = None) -> MarketInfo | None:
    """A market by condition id (also closed ones): asset and window from its ``market_slug``."""
    market = _clob_market(condition_id, config or DiscoveryConfig())
    if market is None:
        return None
    m = re.fullmatch(r"([a-z]+)-updown-15m-(\d+)", str(market.get("market_slug", "")))
    if m is None:
        log.warning("market %s is not a 15-minute up/down market", condition_id)
        return None
    return _market_info(market, m.group(1).upper(), int(m.group(2)))


def fetch_outcome(info: MarketInfo, config: DiscoveryConfig | None = None) -> bool | None:
    """True if UP won, False if DOWN won, None while the market is unresolved (or unreachable)."""
    market = _clob_market(info.condition_id, config or DiscoveryConfig())
    for token in (market or {}).get("tokens", []):
        if token.get("winner") is True:
            winner = str(token.get("token_id"))
            if winner == info.up_token:
                return True
            if winner == info.down_token:
                return False
    return None
