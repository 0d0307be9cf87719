"""A local CLOB V2 REST peer for tests: the venue's endpoints and JSON shapes, a tiny matching engine.

Shapes follow ``py-clob-client-v2`` (endpoints.py, client.py: what it sends and parses) and the
venue's documentation (order response, ``/data/trades`` trade objects with ``maker_orders``,
``/data/order`` with ``associate_trades``, ``/clob-markets`` market info with ``fd`` fees,
``/balance-allowance``, cancel's ``canceled``/``not_canceled``). L2 requests are checked with the
documented HMAC scheme (HMAC-SHA256 over timestamp + method + path + body, url-safe base64).

The book per token is a list of (price, size) levels; FOK orders fill completely against levels at
or better than their worst price or are killed (HTTP 400); GTC orders match what they can and rest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

from trader_ops.httpserver import json_response

EXCHANGE_V2 = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_EXCHANGE_V2 = "0xe2222d279d744050d28e00520010520000310F59"
API_KEY, API_SECRET, API_PASSPHRASE = "k-123", base64.urlsafe_b64encode(b"s" * 32).decode(), "p-456"


@dataclass
class Market:
    condition_id: str
    up: str
    down: str
    slug: str
    fee_rate: float = 0.07
    fee_exponent: float = 1.0
    winner: str | None = None  # token id once resolved (the /markets poll shows it)
    asks: dict[str, list[list[float]]] = field(default_factory=dict)  # token -> [[price, size], ...]
    bids: dict[str, list[list[float]]] = field(default_factory=dict)


class FakeClobV2:
    wants_headers = True  # LocalServer passes the request headers (L1/L2 auth checks)

    def __init__(
        self,
        markets: list[Market],
        balance: float = 100.0,
        allowance: float = 1e12,
        reject_auth: bool = False,
    ) -> None:
        self.markets = {m.condition_id: m for m in markets}
        self.by_token = {t: m for m in markets for t in (m.up, m.down)}
        self.balance = balance
        self.allowance = allowance
        self.reject_auth = reject_auth
        self.orders: dict[str, dict[str, Any]] = {}
        self.trades: dict[str, dict[str, Any]] = {}
        self.posted: list[dict[str, Any]] = []
        self.cancelled: list[str] = []
        self.bad_signatures = 0
        self._lock = threading.Lock()

    # -- helpers ------------------------------------------------------------------------------------
    def _l2_ok(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> bool:
        h = {k.upper(): v for k, v in headers.items()}
        if self.reject_auth or h.get("POLY_API_KEY") != API_KEY or h.get("POLY_PASSPHRASE") != API_PASSPHRASE:
            return False
        msg = h.get("POLY_TIMESTAMP", "") + method + path.split("?", 1)[0] + body.decode()
        want = base64.urlsafe_b64encode(
            hmac.new(base64.urlsafe_b64decode(API_SECRET), msg.encode(), hashlib.sha256).digest()
        ).decode()
        ok = hmac.compare_digest(want, h.get("POLY_SIGNATURE", ""))
        self.bad_signatures += 0 if ok else 1
        return ok

    def _match(self, oid: str, o: dict[str, Any], worst: float, want: float, by_usd: bool, fok: bool):
        """Walk the opposite book from the best level; returns maker fills [(price, shares)]."""
        token, side = o["tokenId"], o["side"]
        m = self.by_token[token]
        levels = m.asks.setdefault(token, []) if side == "BUY" else m.bids.setdefault(token, [])
        levels.sort(key=lambda lv: lv[0], reverse=side == "SELL")
        fills, left = [], want
        for lv in levels:
            price, size = lv
            if left <= 1e-9 or (price > worst + 1e-9 if side == "BUY" else price < worst - 1e-9):
                break
            take = min(size, left / price if by_usd else left)
            fills.append((price, take))
            left -= take * price if by_usd else take
        if fok and left > 1e-6:
            return None
        for price, take in fills:  # consume the book
            for lv in levels:
                if lv[0] == price:
                    lv[1] -= take
        levels[:] = [lv for lv in levels if lv[1] > 1e-9]
        return fills

    def _record_trade(self, oid: str, o: dict[str, Any], fills: list[tuple[float, float]]) -> str:
        m = self.by_token[o["tokenId"]]
        tid = f"trade-{len(self.trades) + 1}"
        maker_side = "SELL" if o["side"] == "BUY" else "BUY"
        self.trades[tid] = {
            "id": tid,
            "taker_order_id": oid,
            "market": m.condition_id,
            "asset_id": o["tokenId"],
            "side": o["side"],
            "size": f"{sum(s for _, s in fills):.6f}",
            "fee_rate_bps": "0",
            "price": f"{fills[0][0]:.4f}",
            "status": "MATCHED",
            "match_time": "1767600100",
            "last_update": "1767600100",
            "outcome": "Up" if o["tokenId"] == m.up else "Down",
            "bucket_index": 0,
            "owner": API_KEY,
            "maker_address": o["maker"],
            "transaction_hash": "0x" + hashlib.sha256(tid.encode()).hexdigest(),
            "trader_side": "TAKER",
            "maker_orders": [
                {
                    "order_id": f"maker-{tid}-{i}",
                    "owner": "other",
                    "maker_address": "0x000000000000000000000000000000000000dEaD",
                    "matched_amount": f"{s:.6f}",
                    "price": f"{p:.4f}",
                    "fee_rate_bps": "0",
                    "asset_id": o["tokenId"],
                    "outcome": "Up" if o["tokenId"] == m.up else "Down",
                    "side": maker_side,
                }
                for i, (p, s) in enumerate(fills)
            ],
        }
        return tid

    def _post_order(self, doc: dict[str, Any]):
        o = doc["order"]
        self.posted.append(doc)
        if o["tokenId"] not in self.by_token:
            return json_response({"error": "market not found"}, 400)
        maker, taker = int(o["makerAmount"]) / 1e6, int(o["takerAmount"]) / 1e6
        oid = "0x" + hashlib.sha256(json.dumps(o, sort_keys=True).encode()).hexdigest()
        if o["side"] == "BUY":
            worst, shares = maker / taker, taker
        else:
            worst, shares = taker / maker, maker
        fok = doc["orderType"] in ("FOK", "FAK")
        if fok:  # market order: a BUY spends makerAmount USDC, a SELL sells makerAmount shares
            fills = self._match(
                oid, o, worst, maker, by_usd=o["side"] == "BUY", fok=doc["orderType"] == "FOK"
            )
            if fills is None or not fills:
                return json_response(
                    {"error": "order couldn't be fully filled. FOK orders are fully filled or killed."}, 400
                )
        else:
            fills = self._match(oid, o, worst, shares, by_usd=False, fok=False)
        tids = [self._record_trade(oid, o, fills)] if fills else []
        matched = sum(s for _, s in fills)
        status = "matched" if fok or matched >= shares - 1e-6 else "live"
        self.orders[oid] = {
            "id": oid,
            "status": status.upper(),
            "market": self.by_token[o["tokenId"]].condition_id,
            "asset_id": o["tokenId"],
            "side": o["side"],
            "original_size": f"{shares:.6f}",
            "size_matched": f"{matched:.6f}",
            "price": f"{worst:.4f}",
            "associate_trades": tids,
            "order_type": doc["orderType"],
            "maker_address": o["maker"],
            "owner": API_KEY,
            "created_at": 1767600100,
        }
        usd = sum(p * s for p, s in fills)
        return json_response(
            {
                "success": True,
                "errorMsg": "",
                "orderID": oid,
                "status": status,
                "makingAmount": f"{usd if o['side'] == 'BUY' else matched:.6f}",
                "takingAmount": f"{matched if o['side'] == 'BUY' else usd:.6f}",
                "tradeIDs": tids,
                "transactionsHashes": [self.trades[t]["transaction_hash"] for t in tids],
            }
        )

    # -- the HTTP responder (LocalServer calls it with method, path, body; headers via attribute) ---
    def __call__(self, method: str, path: str, body: bytes, headers: dict[str, str] | None = None):
        with self._lock:
            return self._route(method, path, body, headers or {})

    def _route(self, method: str, path: str, body: bytes, headers: dict[str, str]):
        url = urlparse(path)
        q = parse_qs(url.query)
        p = url.path
        if p == "/version":
            return json_response({"version": 2})
        if p in ("/auth/derive-api-key", "/auth/api-key"):
            if not {k.upper() for k in headers} >= {"POLY_ADDRESS", "POLY_SIGNATURE", "POLY_TIMESTAMP"}:
                return json_response({"error": "missing L1 headers"}, 401)
            return json_response({"apiKey": API_KEY, "secret": API_SECRET, "passphrase": API_PASSPHRASE})
        if p.startswith("/markets-by-token/"):
            m = self.by_token.get(p.rsplit("/", 1)[1])
            return json_response({"condition_id": m.condition_id} if m else {}, 200 if m else 404)
        if p.startswith("/clob-markets/"):
            m = self.markets.get(p.rsplit("/", 1)[1])
            if m is None:
                return json_response({"error": "not found"}, 404)
            return json_response(
                {
                    "c": m.condition_id,
                    "t": [{"t": m.up, "o": "Up"}, {"t": m.down, "o": "Down"}],
                    "mts": 0.01,
                    "nr": False,
                    "mos": 5,
                    "fd": {"r": m.fee_rate, "e": m.fee_exponent, "to": True},
                }
            )
        if p.startswith("/markets/"):
            m = self.markets.get(p.rsplit("/", 1)[1])
            if m is None:
                return json_response({"error": "not found"}, 404)
            return json_response(
                {
                    "condition_id": m.condition_id,
                    "market_slug": m.slug,
                    "active": m.winner is None,
                    "closed": m.winner is not None,
                    "tokens": [
                        {"token_id": m.up, "outcome": "Up", "winner": m.winner == m.up},
                        {"token_id": m.down, "outcome": "Down", "winner": m.winner == m.down},
                    ],
                }
            )
        # Everything below needs level-2 auth.
        if not self._l2_ok(method, path, body, headers):
            return json_response({"error": "Unauthorized/Invalid api key"}, 401)
        if p == "/balance-allowance":
            if q.get("asset_type") == ["CONDITIONAL"]:
                return json_response({"balance": "0", "allowances": {}})
            allow = str(int(self.allowance * 1e6))
            return json_response(
                {
                    "balance": str(int(self.balance * 1e6)),
                    "allowances": {EXCHANGE_V2: allow, NEG_RISK_EXCHANGE_V2: allow},
                }
            )
        if p == "/order" and method == "POST":
            return self._post_order(json.loads(body))
        if p == "/order" and method == "DELETE":
            oid = json.loads(body)["orderID"]
            self.cancelled.append(oid)
            if oid in self.orders and self.orders[oid]["status"] == "LIVE":
                self.orders[oid]["status"] = "CANCELED"
                return json_response({"canceled": [oid], "not_canceled": {}})
            return json_response({"canceled": [], "not_canceled": {oid: "order not open"}})
        if p.startswith("/data/order/"):
            o = self.orders.get(p.rsplit("/", 1)[1])
            return json_response(o if o else {"error": "not found"}, 200 if o else 404)
        if p == "/data/trades":
            tid = (q.get("id") or [""])[0]
            data = [self.trades[tid]] if tid in self.trades else []
            return json_response({"data": data, "next_cursor": "LTE=", "limit": 100, "count": len(data)})
        return json_response({"error": f"unexpected {method} {path}"}, 404)
