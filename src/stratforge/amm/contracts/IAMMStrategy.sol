// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice What a strategy learns about each trade its AMM executed.
/// @dev Amounts and reserves are WAD fixed-point (1e18 = 1.0); reserves are after the trade.
struct TradeInfo {
    bool isBuy; // the AMM bought X (the trader sold X to it)
    uint256 amountX; // X that changed hands
    uint256 amountY; // Y that changed hands
    uint256 timestamp; // simulation step index
    uint256 reserveX; // X reserve after the trade
    uint256 reserveY; // Y reserve after the trade
}

/// @notice The three hooks the simulator calls. Fees are WAD: 1e14 = 1 bps, at most 1e17 (10 %).
interface IAMMStrategy {
    /// @notice Called once per simulation with the starting reserves; returns the opening fees.
    function afterInitialize(uint256 initialX, uint256 initialY) external returns (uint256 bidFee, uint256 askFee);

    /// @notice Called after every trade on this AMM; returns the fees for the next trade.
    /// @dev bidFee is charged when the AMM buys X, askFee when it sells X.
    function afterSwap(TradeInfo calldata trade) external returns (uint256 bidFee, uint256 askFee);

    /// @notice A display name.
    function getName() external view returns (string memory);
}
