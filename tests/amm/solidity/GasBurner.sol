// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AMMStrategyBase} from "./AMMStrategyBase.sol";
import {IAMMStrategy, TradeInfo} from "./IAMMStrategy.sol";

/// Test fixture: afterSwap spends gas proportional to trade.amountX (a loop of `amountX` rounds of
/// arithmetic) and rewrites several slots, so a test can walk its gas use up to the 250k limit.
/// Slot writes depend on the step so that fresh-transaction and warm gas differ.
contract Strategy is AMMStrategyBase {
    function afterInitialize(uint256, uint256) external override returns (uint256, uint256) {
        slots[0] = 1;
        return (bpsToWad(30), bpsToWad(30));
    }

    function afterSwap(TradeInfo calldata trade) external override returns (uint256, uint256) {
        uint256 acc = slots[0];
        for (uint256 i = 0; i < trade.amountX; i++) {
            acc = (acc * 6364136223846793005 + 1442695040888963407) % (2 ** 64);
        }
        for (uint256 k = 1; k < 1 + trade.amountY; k++) {
            slots[k] = trade.timestamp + k;
        }
        slots[0] = acc | 1;
        return (bpsToWad(30), bpsToWad(30) + (trade.isBuy ? 1 : 0));
    }

    function getName() external pure override returns (string memory) {
        return "GasBurner";
    }
}
