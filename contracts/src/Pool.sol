// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import "./ERC20.sol";

/// @title Pool
/// @notice Minimal Uniswap-v2-style constant-product pair over two ERC20
///         tokens, used by Kestrel's tests and benchmarks (the "hot pool":
///         every swap reads and writes the same reserves). There are no
///         liquidity shares: liquidity is whatever token balances the pool
///         holds when `sync` runs (or, in a genesis allocation, the reserves
///         and balances written directly into storage).
/// @dev Storage layout (relied on by Go code that writes genesis storage):
///      slot 0 token0, slot 1 token1, slot 2 reserve0, slot 3 reserve1.
///      Failures revert with `Error(string)` reasons.
contract Pool {
    ERC20 public token0;
    ERC20 public token1;
    uint256 public reserve0;
    uint256 public reserve1;

    event Swap(address indexed sender, bool zeroForOne, uint256 amountIn, uint256 amountOut);
    event Sync(uint256 reserve0, uint256 reserve1);

    constructor(ERC20 token0_, ERC20 token1_) {
        require(address(token0_) != address(0) && address(token1_) != address(0), "Pool: zero token");
        require(token0_ != token1_, "Pool: identical tokens");
        token0 = token0_;
        token1 = token1_;
    }

    /// @notice Returns both reserves.
    function getReserves() external view returns (uint256, uint256) {
        return (reserve0, reserve1);
    }

    /// @notice Output of swapping `amountIn` of one token for the other at the
    ///         given reserves, after the 0.3% fee (Uniswap v2's getAmountOut).
    function getAmountOut(uint256 amountIn, uint256 reserveIn, uint256 reserveOut) public pure returns (uint256) {
        require(amountIn > 0, "Pool: zero input");
        require(reserveIn > 0 && reserveOut > 0, "Pool: no liquidity");
        uint256 inWithFee = amountIn * 997;
        return (inWithFee * reserveOut) / (reserveIn * 1000 + inWithFee);
    }

    /// @notice Swaps `amountIn` of token0 for token1 (`zeroForOne`) or of
    ///         token1 for token0, pulling the input from the caller with
    ///         transferFrom (the caller must have approved the pool) and sending
    ///         the output to the caller. Reverts when the output is below
    ///         `minOut`.
    function swap(bool zeroForOne, uint256 amountIn, uint256 minOut) external returns (uint256 amountOut) {
        (uint256 rIn, uint256 rOut) = zeroForOne ? (reserve0, reserve1) : (reserve1, reserve0);
        amountOut = getAmountOut(amountIn, rIn, rOut);
        require(amountOut > 0, "Pool: insufficient output");
        require(amountOut >= minOut, "Pool: output below minimum");
        (ERC20 tIn, ERC20 tOut) = zeroForOne ? (token0, token1) : (token1, token0);
        // Effects before interactions; amountOut < rOut, so no underflow.
        if (zeroForOne) {
            reserve0 = rIn + amountIn;
            reserve1 = rOut - amountOut;
        } else {
            reserve1 = rIn + amountIn;
            reserve0 = rOut - amountOut;
        }
        require(tIn.transferFrom(msg.sender, address(this), amountIn), "Pool: transferFrom failed");
        require(tOut.transfer(msg.sender, amountOut), "Pool: transfer failed");
        emit Swap(msg.sender, zeroForOne, amountIn, amountOut);
    }

    /// @notice Sets the reserves to the pool's token balances (how liquidity
    ///         is added: transfer both tokens to the pool, then sync).
    function sync() external {
        reserve0 = token0.balanceOf(address(this));
        reserve1 = token1.balanceOf(address(this));
        emit Sync(reserve0, reserve1);
    }
}
