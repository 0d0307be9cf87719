// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AMMStrategyBase} from "./AMMStrategyBase.sol";
import {IAMMStrategy, TradeInfo} from "./IAMMStrategy.sol";

/// Test fixture: afterSwap returns a bid fee just above MAX_FEE, which the simulator must ignore.
contract Strategy is AMMStrategyBase {
    function afterInitialize(uint256, uint256) external pure override returns (uint256, uint256) {
        return (bpsToWad(50), bpsToWad(50));
    }

    function afterSwap(TradeInfo calldata) external pure override returns (uint256, uint256) {
        return (MAX_FEE + 1, bpsToWad(30));
    }

    function getName() external pure override returns (string memory) {
        return "FeeTooHigh";
    }
}
