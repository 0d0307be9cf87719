// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AMMStrategyBase} from "./AMMStrategyBase.sol";
import {IAMMStrategy, TradeInfo} from "./IAMMStrategy.sol";

/// Test fixture: afterSwap always reverts, so the opening 50 bps stay for the whole simulation.
contract Strategy is AMMStrategyBase {
    function afterInitialize(uint256, uint256) external pure override returns (uint256, uint256) {
        return (bpsToWad(50), bpsToWad(50));
    }

    function afterSwap(TradeInfo calldata) external pure override returns (uint256, uint256) {
        revert("always");
    }

    function getName() external pure override returns (string memory) {
        return "AlwaysReverts";
    }
}
