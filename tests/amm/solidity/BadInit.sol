// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AMMStrategyBase} from "./AMMStrategyBase.sol";
import {IAMMStrategy, TradeInfo} from "./IAMMStrategy.sol";

/// Test fixture: afterInitialize reverts, which must fail the run with a clear error.
contract Strategy is AMMStrategyBase {
    function afterInitialize(uint256, uint256) external pure override returns (uint256, uint256) {
        revert("cannot start");
    }

    function afterSwap(TradeInfo calldata) external pure override returns (uint256, uint256) {
        return (bpsToWad(50), bpsToWad(50));
    }

    function getName() external pure override returns (string memory) {
        return "BadInit";
    }
}
