"""`replay`: answers only from the cache, so a recorded run can be re-run offline bit-for-bit."""

from __future__ import annotations

from stratforge.explore.llm.base import LLMBackend
from stratforge.explore.llm.types import CacheMiss, LLMConfigError, LLMResponse


class ReplayBackend(LLMBackend):
    """Never sends anything. Keys are computed as the recorded live backend (``replay_of``) did."""

    kind = "replay"

    @property
    def key_kind(self) -> str:
        if not self.config.replay_of:
            raise LLMConfigError("the replay backend needs replay_of (the backend that recorded the cache)")
        return self.config.replay_of

    def complete(self, prompt: str, *, system: str | None = None) -> LLMResponse:
        key = self.cache_key(prompt, system=system)
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is None:
            where = self.cache.path_for(key) if self.cache is not None else "(no cache_dir)"
            raise CacheMiss(
                f"replay: no recorded {self.config.replay_of} response for this prompt/settings "
                f"(model={self.config.model!r}); expected {where}"
            )
        self._record(hit)
        return hit

    def _call(self, prompt: str, system: str | None) -> LLMResponse:  # pragma: no cover - never used
        raise CacheMiss("replay backend never calls out")
