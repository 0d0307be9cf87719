// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AMMStrategyBase} from "./AMMStrategyBase.sol";
import {IAMMStrategy, TradeInfo} from "./IAMMStrategy.sol";

/// Test fixture: every afterSwap writes past the 32 slots (index 32 + timestamp), which reverts.
contract Strategy is AMMStrategyBase {
    function afterInitialize(uint256, uint256) external override returns (uint256, uint256) {
        writeSlot(31, 7);
        return (bpsToWad(50), bpsToWad(50));
    }

    function afterSwap(TradeInfo calldata trade) external override returns (uint256, uint256) {
        writeSlot(32 + trade.timestamp, trade.amountX);
        return (bpsToWad(10), bpsToWad(10));
    }

    function getName() external pure override returns (string memory) {
        return "SlotOutOfBounds";
    }
}
