// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AMMStrategyBase} from "./AMMStrategyBase.sol";
import {IAMMStrategy, TradeInfo} from "./IAMMStrategy.sol";

/// Test fixture: keeps a counter in its own state variable; the storage-layout rule rejects it.
contract Strategy is AMMStrategyBase {
    uint256 private counter;

    function afterInitialize(uint256, uint256) external override returns (uint256, uint256) {
        counter = 1;
        return (bpsToWad(50), bpsToWad(50));
    }

    function afterSwap(TradeInfo calldata) external override returns (uint256, uint256) {
        counter += 1;
        return (bpsToWad(50), bpsToWad(50));
    }

    function getName() external pure override returns (string memory) {
        return "StorageOutsideSlots";
    }
}
