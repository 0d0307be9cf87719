// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AMMStrategyBase} from "./AMMStrategyBase.sol";
import {IAMMStrategy, TradeInfo} from "./IAMMStrategy.sol";

/// Test fixture of the size of the public leaderboard's top strategies: 14 slots read and written
/// on every afterSwap (~80-90k gas in a fresh transaction), a few hundred lines of arithmetic.
/// It infers the fair price from the first trade of a step, keeps volatility, per-side toxicity,
/// retail activity and arbitrage-frequency estimates, and sets asymmetric fees from them.
///
/// Storage map:
///    0: step index of the previous trade        7: retail activity (EWMA of trades per step)
///    1: inferred fair price (WAD, Y per X)      8: bid fee returned last
///    2: volatility (EWMA of relative moves)     9: ask fee returned last
///    3: spot price after the previous trade    10: arbitrage frequency (EWMA, WAD)
///    4: toxicity of flow hitting the bid       11: mean trade size in Y (EWMA)
///    5: toxicity of flow hitting the ask       12: reserve X after the previous trade
///    6: trades seen in the current step        13: reserve Y after the previous trade
contract Strategy is AMMStrategyBase {
    uint256 constant BASE = 22 * BPS;
    uint256 constant FLOOR = 12 * BPS;
    uint256 constant CEIL = 90 * BPS;
    uint256 constant VOL_GAIN = 9; // tenths of the volatility added to the fee
    uint256 constant TOX_GAIN = 6; // hundredths
    uint256 constant SIZE_GAIN = 3;
    uint256 constant FAST = 4; // EWMA weights as shifts: 1/16 and 1/64
    uint256 constant SLOW = 6;

    function afterInitialize(uint256 initialX, uint256 initialY) external override returns (uint256, uint256) {
        uint256 spot = wdiv(initialY, initialX);
        slots[0] = type(uint256).max; // no step seen yet
        slots[1] = spot;
        slots[2] = 10 * BPS;
        slots[3] = spot;
        // slots 4, 5, 6, 10, 12 and 13 start at zero (a first write costs 22,100 gas: fourteen
        // would not fit into afterInitialize's 250k)
        slots[7] = WAD;
        slots[8] = BASE;
        slots[9] = BASE;
        slots[11] = 20 * WAD;
        return (BASE, BASE);
    }

    struct State {
        uint256 lastStep;
        uint256 fair;
        uint256 vol;
        uint256 lastSpot;
        uint256 toxBid;
        uint256 toxAsk;
        uint256 inStep;
        uint256 activity;
        uint256 bid;
        uint256 ask;
        uint256 arbFreq;
        uint256 meanSize;
        uint256 lastRx;
        uint256 lastRy;
    }

    function load() internal view returns (State memory s) {
        s.lastStep = slots[0];
        s.fair = slots[1];
        s.vol = slots[2];
        s.lastSpot = slots[3];
        s.toxBid = slots[4];
        s.toxAsk = slots[5];
        s.inStep = slots[6];
        s.activity = slots[7];
        s.bid = slots[8];
        s.ask = slots[9];
        s.arbFreq = slots[10];
        s.meanSize = slots[11];
        s.lastRx = slots[12];
        s.lastRy = slots[13];
    }

    function store(State memory s) internal {
        slots[0] = s.lastStep;
        slots[1] = s.fair;
        slots[2] = s.vol;
        slots[3] = s.lastSpot;
        slots[4] = s.toxBid;
        slots[5] = s.toxAsk;
        slots[6] = s.inStep;
        slots[7] = s.activity;
        slots[8] = s.bid;
        slots[9] = s.ask;
        slots[10] = s.arbFreq;
        slots[11] = s.meanSize;
        slots[12] = s.lastRx;
        slots[13] = s.lastRy;
    }

    function ewma(uint256 old, uint256 sample, uint256 shift) internal pure returns (uint256) {
        return old - (old >> shift) + (sample >> shift);
    }

    /// After an arbitrage the spot sits at the fair price scaled by the fee the arbitrageur paid.
    function inferFair(TradeInfo calldata trade, uint256 spot, State memory s) internal pure returns (uint256) {
        if (trade.isBuy) {
            return wmul(spot, WAD - s.bid);
        }
        return wdiv(spot, WAD - s.ask);
    }

    function afterSwap(TradeInfo calldata trade) external override returns (uint256, uint256) {
        State memory s = load();
        uint256 spot = wdiv(trade.reserveY, trade.reserveX);
        bool newStep = trade.timestamp != s.lastStep;

        if (newStep) {
            uint256 fair = inferFair(trade, spot, s);
            uint256 move = s.lastSpot > 0 ? wdiv(absDiff(spot, s.lastSpot), s.lastSpot) : 0;
            // a jump much larger than the estimate is clipped so one outlier cannot blow it up
            uint256 cap = s.vol * 4 + BPS;
            s.vol = ewma(s.vol, move > cap ? cap : move, FAST);
            s.fair = fair;
            s.activity = ewma(s.activity, s.inStep * WAD, SLOW);
            // a step whose first trade moved the price a lot was an arbitrage
            s.arbFreq = ewma(s.arbFreq, move > s.vol ? WAD : 0, SLOW);
            s.inStep = 1;
            s.lastStep = trade.timestamp;
        } else {
            s.inStep += 1;
            // retail within a step: pull the fair estimate a little towards the spot
            s.fair = (s.fair * 15 + spot) / 16;
        }

        // Toxicity: flow that moves the spot away from the inferred fair price is informed.
        uint256 size = trade.amountY;
        s.meanSize = ewma(s.meanSize, size, SLOW);
        uint256 relSize = s.meanSize > 0 ? wdiv(size, s.meanSize) : WAD;
        uint256 gap = s.fair > 0 ? wdiv(absDiff(spot, s.fair), s.fair) : 0;
        if (trade.isBuy) {
            s.toxBid = ewma(s.toxBid, gap * (relSize > 4 * WAD ? 4 : relSize / WAD + 1), FAST);
            s.toxAsk = ewma(s.toxAsk, 0, SLOW) + 1;
        } else {
            s.toxAsk = ewma(s.toxAsk, gap * (relSize > 4 * WAD ? 4 : relSize / WAD + 1), FAST);
            s.toxBid = ewma(s.toxBid, 0, SLOW) + 1;
        }

        // Reserve drift since the previous trade (how far this trade pushed the pool)
        uint256 dx = absDiff(trade.reserveX, s.lastRx);
        uint256 drift = s.lastRx > 0 ? wdiv(dx, s.lastRx) : 0;
        s.lastRx = trade.reserveX;
        s.lastRy = trade.reserveY;
        s.lastSpot = spot;

        uint256 common = BASE + (s.vol * VOL_GAIN) / 10 + wmul(drift, SIZE_GAIN * BPS * 10);
        // more arbitrage than usual: widen; busy retail: tighten a little to keep the flow
        common = wmul(common, WAD + s.arbFreq / 4);
        uint256 discount = s.activity > 2 * WAD ? 3 * BPS : s.activity / 1e4 / 2;
        common = common > discount ? common - discount : 0;

        uint256 bid = common + (s.toxBid * TOX_GAIN) / 100;
        uint256 ask = common + (s.toxAsk * TOX_GAIN) / 100;
        // the side where the spot is stale against the fair price pays more
        if (spot > s.fair) {
            ask += gap / 20;
        } else {
            bid += gap / 20;
        }
        s.bid = clamp(bid, FLOOR, CEIL);
        s.ask = clamp(ask, FLOOR, CEIL);
        store(s);
        return (s.bid, s.ask);
    }

    function getName() external pure override returns (string memory) {
        return "ComplexFixture";
    }
}
