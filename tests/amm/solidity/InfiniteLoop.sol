// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AMMStrategyBase} from "./AMMStrategyBase.sol";
import {IAMMStrategy, TradeInfo} from "./IAMMStrategy.sol";

/// Test fixture: afterSwap never terminates; only the gas limit stops it.
contract Strategy is AMMStrategyBase {
    function afterInitialize(uint256, uint256) external override returns (uint256, uint256) {
        slots[0] = 1;
        return (bpsToWad(50), bpsToWad(50));
    }

    function afterSwap(TradeInfo calldata trade) external override returns (uint256, uint256) {
        uint256 i = trade.timestamp;
        while (true) {
            unchecked {
                i = i * 3 + slots[0];
            }
            slots[0] = i;
        }
        return (i, i);
    }

    function getName() external pure override returns (string memory) {
        return "InfiniteLoop";
    }
}
