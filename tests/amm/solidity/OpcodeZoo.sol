// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AMMStrategyBase} from "./AMMStrategyBase.sol";
import {IAMMStrategy, TradeInfo} from "./IAMMStrategy.sol";

/// Test fixture for the EVM differential tests: afterSwap picks one of several blocks by
/// `timestamp % 14`, each making solc emit a different family of opcodes (signed arithmetic,
/// modular arithmetic, EXP, SIGNEXTEND, BYTE, shifts, KECCAK256, the environment, gasleft, LOGs,
/// memory copies and growth, reverts and panics, checked overflow, SSTORE refund patterns, deep
/// recursion, long string constants). Its fees are a hash of everything it saw.
contract Strategy is AMMStrategyBase {
    event Traded(uint256 indexed step, bool indexed isBuy, uint256 amountX);
    event Note(uint256 value);
    event Tagged(bytes32 indexed a, bytes32 indexed b, bytes32 indexed c, uint256 d);
    event Plain(uint256 value) anonymous;
    event One(uint256 indexed a, uint256 b);

    error TooLarge(uint256 value);

    function afterInitialize(uint256 initialX, uint256 initialY) external override returns (uint256, uint256) {
        slots[0] = uint256(keccak256(abi.encode(initialX, initialY)));
        return (bpsToWad(30), bpsToWad(30));
    }

    function depth(uint256 n) internal pure returns (uint256) {
        return n == 0 ? 0 : depth(n - 1) + 1;
    }

    function afterSwap(TradeInfo calldata t) external override returns (uint256, uint256) {
        uint256 mode = t.timestamp % 14;
        uint256 acc = slots[0];
        if (mode == 0) {
            int256 a = int256(t.amountX % 2 ** 200) - int256(t.amountY % 2 ** 200);
            int256 b = int256(t.reserveX % 1000) - 500;
            if (b == 0) b = 7;
            acc ^= uint256(a / b) ^ uint256(a % b);
            acc ^= uint256(a >> (t.amountX % 256));
            acc += (a < b ? 1 : 0) + (a > b ? 2 : 0);
        } else if (mode == 1) {
            acc = addmod(acc, t.amountX, t.reserveY | 1) ^ mulmod(acc, t.amountY, t.reserveX | 1);
            unchecked {
                acc ^= t.amountX ** (t.amountY % 300);
            }
        } else if (mode == 2) {
            int8 small = int8(int256(t.amountX % 256) - 128);
            int16 mid = int16(int256(t.amountY % 65536) - 32768);
            acc += uint256(int256(small)) ^ uint256(int256(mid));
            bytes32 h = keccak256(abi.encodePacked(t.amountX, t.amountY, t.isBuy));
            acc ^= uint256(uint8(h[t.amountX % 32]));
            acc ^= (uint256(h) << (t.amountY % 256)) ^ (uint256(h) >> (t.amountX % 256));
        } else if (mode == 3) {
            acc ^= block.timestamp ^ block.number ^ block.chainid ^ block.prevrandao;
            // block.gaslimit is left out: pyrevm cannot be given the reference's 2^256-1 (see test_evm_native)
            acc ^= block.basefee ^ tx.gasprice;
            acc ^= uint256(uint160(tx.origin)) ^ (uint256(uint160(msg.sender)) << 1);
            acc ^= uint256(uint160(address(this))) << 2;
            acc ^= address(this).balance ^ uint256(blockhash(block.number)) ^ msg.data.length;
        } else if (mode == 4) {
            acc ^= gasleft();
        } else if (mode == 5) {
            emit Traded(t.timestamp, t.isBuy, t.amountX);
            emit Note(acc);
            emit Tagged(bytes32(acc), bytes32(t.amountX), bytes32(t.amountY), t.reserveX);
            emit Plain(t.reserveY);
            emit One(t.amountY, t.reserveX);
        } else if (mode == 6) {
            bytes memory d = msg.data;
            uint256[] memory arr = new uint256[](t.amountX % 2 ** 40);
            for (uint256 i = 0; i < arr.length && i < 64; i++) {
                arr[i] = i * (acc % 2 ** 128);
            }
            acc ^= uint256(keccak256(d)) ^ (arr.length > 3 ? arr[3] : 0);
        } else if (mode == 7) {
            if (t.amountX % 3 == 0) revert TooLarge(t.amountX);
            require(t.amountY % 5 != 0, "amountY divisible by five");
            acc = acc / (t.amountX % 7);
            assert(t.reserveX % 11 != 0);
        } else if (mode == 8) {
            acc = t.amountX * t.amountY * t.reserveX;
            acc = acc - t.reserveY;
        } else if (mode == 9) {
            slots[1] = 0;
            slots[2] = t.amountX;
            slots[2] = 0;
            slots[3] = slots[3] + 1;
            slots[3] = slots[3] - 1;
            slots[4] = t.amountX % 3 == 0 ? 0 : t.amountY;
        } else if (mode == 10) {
            bytes memory s = abi.encodePacked("step-", t.timestamp);
            s[t.amountY % s.length] = bytes1(uint8(t.amountX));
            acc ^= s.length ^ uint256(keccak256(s));
            unchecked {
                for (uint256 i = 0; i < t.amountX % 200; i++) {
                    acc = acc * 31 + i;
                }
            }
        } else if (mode == 11) {
            string memory long = "a long string constant that does not fit into one word, so solc copies it from code";
            acc ^= uint256(keccak256(bytes(long)));
        } else if (mode == 12) {
            acc ^= depth(t.amountX % 2000);
        } else {
            for (uint256 k = 5; k < 5 + (t.amountY % 20); k++) {
                slots[k] = slots[k] + acc;
            }
        }
        slots[0] = acc;
        slots[5 + (t.timestamp % 20)] = acc;
        return (acc % MAX_FEE, (acc >> 128) % MAX_FEE);
    }

    function getName() external pure override returns (string memory) {
        return "OpcodeZoo";
    }
}
