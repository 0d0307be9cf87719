// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AMMStrategyBase} from "./AMMStrategyBase.sol";
import {IAMMStrategy, TradeInfo} from "./IAMMStrategy.sol";

/// @notice The normalizer: a constant 30 bps on both sides. Every simulation pits the submission
/// against an AMM with exactly these fees (the simulator runs it natively).
contract Strategy is AMMStrategyBase {
    uint256 public constant FEE = 30 * BPS;

    function afterInitialize(uint256, uint256) external pure override returns (uint256, uint256) {
        return (FEE, FEE);
    }

    function afterSwap(TradeInfo calldata) external pure override returns (uint256, uint256) {
        return (FEE, FEE);
    }

    function getName() external pure override returns (string memory) {
        return "Vanilla_30bps";
    }
}
