// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AMMStrategyBase} from "./AMMStrategyBase.sol";
import {IAMMStrategy, TradeInfo} from "./IAMMStrategy.sol";

/// @notice A small dynamic example: the fee follows an estimate of recent price volatility, and is
/// skewed against the side an arbitrageur would trade next after the last trade moved the price.
///
/// Storage map (everything lives in `slots`):
///   0: spot price (Y per X, WAD) after the previous trade
///   1: volatility estimate: EWMA of relative spot moves between steps (WAD)
///   2: step index of the previous trade
contract Strategy is AMMStrategyBase {
    uint256 constant BASE_FEE = 45 * BPS;
    uint256 constant MIN_DYN_FEE = 30 * BPS;
    uint256 constant MAX_DYN_FEE = 150 * BPS;
    uint256 constant SKEW = 10 * BPS;
    // The EWMA keeps 7/8 of the old estimate per new step.
    uint256 constant DECAY_NUM = 7;
    uint256 constant DECAY_DEN = 8;
    // A typical per-step move is ~0.1 % (1e15); 1.2x that move is added to the fee.
    uint256 constant VOL_MULT = 12;

    function afterInitialize(uint256 initialX, uint256 initialY) external override returns (uint256, uint256) {
        writeSlot(0, wdiv(initialY, initialX));
        writeSlot(1, 10 * BPS); // start from the typical 0.1 % move
        writeSlot(2, 0);
        return (BASE_FEE, BASE_FEE);
    }

    function afterSwap(TradeInfo calldata trade) external override returns (uint256, uint256) {
        uint256 spot = wdiv(trade.reserveY, trade.reserveX);
        uint256 lastSpot = readSlot(0);
        uint256 vol = readSlot(1);

        // Only the first trade of a step carries news about the fair price; later trades in the
        // same step are retail flow moving the spot by their own size.
        if (trade.timestamp != readSlot(2) && lastSpot > 0) {
            uint256 move = wdiv(absDiff(spot, lastSpot), lastSpot);
            vol = (vol * DECAY_NUM + move) / DECAY_DEN;
            writeSlot(1, vol);
            writeSlot(2, trade.timestamp);
        }
        writeSlot(0, spot);

        uint256 fee = clamp(BASE_FEE + VOL_MULT * vol / 10, MIN_DYN_FEE, MAX_DYN_FEE);
        // The AMM just bought X, so its price fell: buying X from it (the ask side) is now the
        // trade an arbitrageur makes if the fair price did not fall as far. Charge that side more
        // and discount the side that pulls the price back.
        if (trade.isBuy) {
            return (clampFee(fee - SKEW), clampFee(fee + SKEW));
        }
        return (clampFee(fee + SKEW), clampFee(fee - SKEW));
    }

    function getName() external pure override returns (string memory) {
        return "DynamicVolatility";
    }
}
