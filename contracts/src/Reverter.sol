// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Reverter
/// @notice Tiny helper contract for RPC tests (eth_call, eth_estimateGas,
///         receipts and logs): it can revert with a reason string, revert with
///         a custom error, or store a value and emit an event.
contract Reverter {
    /// @notice Raised by revertWithCustomError.
    error CustomError(uint256 code, string message);

    /// @notice Emitted by store.
    event ValueStored(address indexed sender, uint256 indexed value, bytes data);

    /// @notice The last value passed to store.
    uint256 public value;

    /// @notice Always reverts with Error("Reverter: always reverts").
    function revertWithReason() external pure {
        revert("Reverter: always reverts");
    }

    /// @notice Always reverts with CustomError(42, "custom").
    function revertWithCustomError() external pure {
        revert CustomError(42, "custom");
    }

    /// @notice Reverts via require when `ok` is false, otherwise returns true.
    function requireTrue(bool ok) external pure returns (bool) {
        require(ok, "Reverter: requirement failed");
        return true;
    }

    /// @notice Stores `newValue` and emits ValueStored(msg.sender, newValue, data).
    function store(uint256 newValue, bytes calldata data) external {
        value = newValue;
        emit ValueStored(msg.sender, newValue, data);
    }
}
