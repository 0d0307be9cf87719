// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AMMStrategyBase} from "./AMMStrategyBase.sol";
import {IAMMStrategy, TradeInfo} from "./IAMMStrategy.sol";

/// Test fixture: afterSwap allocates a memory array sized by the trade (millions of words), so
/// memory expansion gas exceeds the 250k limit on every call; the run must stay at 50 bps.
contract Strategy is AMMStrategyBase {
    function afterInitialize(uint256, uint256) external override returns (uint256, uint256) {
        return (bpsToWad(50), bpsToWad(50));
    }

    function afterSwap(TradeInfo calldata trade) external override returns (uint256, uint256) {
        uint256[] memory big = new uint256[](trade.reserveY / 1e15 + 1_000_000);
        big[big.length - 1] = trade.amountX;
        return (bpsToWad(10) + big[big.length - 1] % 2, bpsToWad(10));
    }

    function getName() external pure override returns (string memory) {
        return "MemoryBomb";
    }
}
