"""Each safety rule, driven with an explicit clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratforge.trader import safety as S
from stratforge.trader.markets.messages import MarketInfo
from stratforge.trader.positions import Position
from stratforge.trader.safety import Mark, Safety, SafetyConfig

T0 = 1_767_600_000.0  # a window start (multiple of 900)
MARKET = MarketInfo("BTC", T0, "0xc", "1", "2")


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def pos(key: str = "p", entry: float = 0.5, entry_time: float = T0 + 60, size: float = 10.0) -> Position:
    return Position(key, key, MARKET, "UP", entry_time, entry, size / entry, size)


def fresh(price: float, now: float) -> Mark:
    return Mark(price, now - 1)


@pytest.mark.parametrize(
    ("now", "price", "book_age", "reason"),
    [
        (T0 + 300, 0.5, 1, None),
        (T0 + 721, 0.5, 1, S.WINDOW_END),  # 179 s left
        (T0 + 719, 0.5, 1, None),  # 181 s left
        (T0 + 300, 0.5, 61, S.STALE_BOOK),
        (T0 + 300, 0.5, 59, None),
        (T0 + 300, 0.875, 1, S.TAKE_PROFIT),  # +75%
        (T0 + 300, 0.87, 1, None),
        (T0 + 300, 0.325, 1, S.STOP_LOSS),  # -35%
        (T0 + 300, 0.33, 1, None),
    ],
)
def test_exit_rules(now: float, price: float, book_age: float, reason: str | None) -> None:
    safety = Safety(clock=Clock(now))
    assert safety.exit_reason(pos(), Mark(price, now - book_age)) == reason


def test_max_age_closes_before_window_rule() -> None:
    # Window end pushed out (a custom long window) so only the age rule can fire.
    long_window = MarketInfo("BTC", T0, "0xl", "1", "2", window_end=T0 + 5000)
    p = Position("p", "p", long_window, "UP", T0, 0.5, 20.0, 10.0)
    safety = Safety(clock=Clock(T0 + 841))
    assert safety.exit_reason(p, fresh(0.5, T0 + 841)) == S.MAX_AGE
    assert Safety(clock=Clock(T0 + 839)).exit_reason(p, fresh(0.5, T0 + 839)) is None


def test_missing_book_is_stale() -> None:
    safety = Safety(clock=Clock(T0 + 300))
    assert safety.exits([pos("a"), pos("b")], {"a": fresh(0.5, T0 + 300)}) == [("b", S.STALE_BOOK)]


def test_max_positions_and_exposure() -> None:
    safety = Safety(SafetyConfig(max_positions=4, max_exposure=35.0), clock=Clock(T0))
    three = [pos(str(i)) for i in range(3)]
    assert safety.entry_block(three, 5.0) is None
    assert safety.entry_block(three, 6.0) == "max_exposure"
    assert safety.entry_block([*three, pos("x", size=1.0)], 1.0) == "max_positions"


def test_daily_loss_limit_resets_next_day() -> None:
    clock = Clock(T0)
    safety = Safety(SafetyConfig(daily_loss_limit=20.0, max_consecutive_losses=99), clock=clock)
    assert safety.record_close(-15.0) == []
    assert safety.entry_block([], 1.0) is None
    assert safety.record_close(-6.0) == ["daily_loss_limit"]
    assert safety.entry_block([], 1.0) == "daily_loss_limit"
    clock.t += 86_400
    assert safety.entry_block([], 1.0) is None


def test_consecutive_losses_pause() -> None:
    clock = Clock(T0)
    safety = Safety(
        SafetyConfig(max_consecutive_losses=3, loss_pause_s=600, daily_loss_limit=1e9), clock=clock
    )
    safety.record_close(-1)
    safety.record_close(-1)
    safety.record_close(+1)  # a win resets the streak
    safety.record_close(-1)
    safety.record_close(-1)
    assert safety.entry_block([], 1.0) is None
    assert safety.record_close(-1) == ["consecutive_losses"]
    assert safety.entry_block([], 1.0) == "consecutive_losses"
    clock.t += 601
    assert safety.entry_block([], 1.0) is None


def test_kill_switch_file_and_command(tmp_path: Path) -> None:
    flag = S.kill_switch_path(tmp_path)
    safety = Safety(SafetyConfig(kill_switch_file=flag), clock=Clock(T0))
    assert safety.entry_block([], 1.0) is None
    flag.touch()
    assert safety.entry_block([], 1.0) == "kill_switch"
    flag.unlink()
    safety.kill("operator")
    assert safety.entry_block([], 1.0) == "kill_switch"


def test_state_roundtrip() -> None:
    clock = Clock(T0)
    a = Safety(SafetyConfig(max_consecutive_losses=2), clock=clock)
    a.record_close(-3.0)
    a.record_close(-4.0)
    b = Safety(SafetyConfig(max_consecutive_losses=2), clock=clock)
    b.restore(a.to_dict())
    assert b.state.daily_pnl == pytest.approx(-7.0)
    assert b.entry_block([], 1.0) == "consecutive_losses"


def test_degraded_feed_blocks_entries_not_exits() -> None:
    safety = Safety(clock=Clock(T0 + 300))
    assert safety.entry_block([], 1.0, feed_problem="futures silent for 45s") == S.FEED_DEGRADED
    assert safety.entry_block([], 1.0, feed_problem=None) is None
    # Exits do not depend on feed health: a fresh book with a stop-loss mark still closes.
    assert safety.exit_reason(pos(), Mark(0.3, T0 + 299)) == S.STOP_LOSS
