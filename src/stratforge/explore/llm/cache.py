"""Content-addressed response cache: same prompt and settings give the same key on any machine.

Layout: ``<cache_dir>/<key[:2]>/<key>.json``. Writes go to a temp file in the same directory and are
renamed into place, so a crash or a concurrent writer never leaves a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stratforge.explore.llm.types import LLMResponse
from stratforge.files import atomic_write_json

# Bump when the key recipe changes so old entries are never misread as answers to new requests.
KEY_VERSION = 1


@dataclass(frozen=True)
class CacheKeyParts:
    """Every setting that can change the text a backend returns."""

    kind: str
    model: str
    prompt: str
    system: str | None
    temperature: float | None
    max_tokens: int
    extra: tuple[tuple[str, str], ...] = ()

    def canonical(self) -> str:
        payload = {
            "v": KEY_VERSION,
            "kind": self.kind,
            "model": self.model,
            "prompt": self.prompt,
            "system": self.system,
            # repr of a float is exact and platform independent; None stays None
            "temperature": None if self.temperature is None else repr(float(self.temperature)),
            "max_tokens": int(self.max_tokens),
            "extra": [list(kv) for kv in sorted(self.extra)],
        }
        return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    def key(self) -> str:
        return hashlib.sha256(self.canonical().encode("utf-8")).hexdigest()


class ResponseCache:
    """A directory of JSON records, one per key."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path_for(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> LLMResponse | None:
        """The stored response, marked ``cached=True`` with zero cost; None on a miss or unreadable entry."""
        path = self.path_for(key)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            resp = record["response"]
            return LLMResponse(
                text=resp["text"],
                model=resp["model"],
                input_tokens=int(resp["input_tokens"]),
                output_tokens=int(resp["output_tokens"]),
                cost_usd=0.0,
                latency_s=float(resp["latency_s"]),
                backend=resp["backend"],
                raw=resp.get("raw", ""),
                cached=True,
                key=key,
                stderr=resp.get("stderr", ""),
                extra={**resp.get("extra", {}), "original_cost_usd": float(resp.get("cost_usd", 0.0))},
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, parts: CacheKeyParts, response: LLMResponse) -> Path:
        """Store atomically; the request parts are kept next to the answer for audit."""
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {
            "key": key,
            "key_version": KEY_VERSION,
            "stored_at": time.time(),
            "request": json.loads(parts.canonical()),
            "response": {**response.to_dict(), "cached": False, "key": key},
        }
        atomic_write_json(path, record, ensure_ascii=False, indent=1)
        return path

    def __contains__(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("??/*.json"))
