// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAMMStrategy, TradeInfo} from "./IAMMStrategy.sol";

/// @notice Every strategy inherits from this contract. It owns the only storage a strategy may use
/// (32 words in `slots`) and a few fixed-point helpers.
abstract contract AMMStrategyBase is IAMMStrategy {
    /// @notice 1.0 in WAD fixed-point.
    uint256 public constant WAD = 1e18;
    /// @notice The largest fee a hook may return (10 %). Larger values are ignored by the simulator.
    uint256 public constant MAX_FEE = WAD / 10;
    /// @notice The smallest fee.
    uint256 public constant MIN_FEE = 0;
    /// @notice One basis point in WAD.
    uint256 public constant BPS = 1e14;

    /// @notice Persistent state of the strategy. Declaring any other state variable is rejected.
    uint256[32] public slots;

    /// @notice x * y for WAD numbers (rounds down).
    function wmul(uint256 x, uint256 y) internal pure returns (uint256) {
        return (x * y) / WAD;
    }

    /// @notice x / y for WAD numbers (rounds down; reverts when y is zero).
    function wdiv(uint256 x, uint256 y) internal pure returns (uint256) {
        return (x * WAD) / y;
    }

    /// @notice value limited to [minVal, maxVal].
    function clamp(uint256 value, uint256 minVal, uint256 maxVal) internal pure returns (uint256) {
        if (value < minVal) return minVal;
        if (value > maxVal) return maxVal;
        return value;
    }

    /// @notice Basis points to a WAD fee.
    function bpsToWad(uint256 bps) internal pure returns (uint256) {
        return bps * BPS;
    }

    /// @notice A WAD fee to whole basis points (rounds down).
    function wadToBps(uint256 wadValue) internal pure returns (uint256) {
        return wadValue / BPS;
    }

    /// @notice A fee limited to the valid range [MIN_FEE, MAX_FEE].
    function clampFee(uint256 fee) internal pure returns (uint256) {
        return clamp(fee, MIN_FEE, MAX_FEE);
    }

    /// @notice |a - b| without underflow.
    function absDiff(uint256 a, uint256 b) internal pure returns (uint256) {
        return a > b ? a - b : b - a;
    }

    /// @notice Integer square root, rounded down (Babylonian iteration).
    function sqrt(uint256 x) internal pure returns (uint256 y) {
        if (x == 0) return 0;
        uint256 z = (x + 1) / 2;
        y = x;
        while (z < y) {
            y = z;
            z = (x / z + z) / 2;
        }
    }

    /// @notice slots[index], with a readable error for a bad index.
    function readSlot(uint256 index) internal view returns (uint256) {
        require(index < 32, "Slot index out of bounds");
        return slots[index];
    }

    /// @notice slots[index] = value, with a readable error for a bad index.
    function writeSlot(uint256 index, uint256 value) internal {
        require(index < 32, "Slot index out of bounds");
        slots[index] = value;
    }
}
