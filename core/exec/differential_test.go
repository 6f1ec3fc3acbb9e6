package exec_test

// Differential tests of the execution engines (issue 3, part 6). A deterministic
// generator derives, from a seed and a few knobs, a pre-state and a sequence of
// blocks of signed transactions that cover what a parallel engine can get
// wrong: shared counters, hot ERC-20 balances and an AMM pool every swap
// touches, the fee recipient's balance (a commutative counter for Block-STM)
// read by contracts and spent by its own transactions, contract creation and
// destruction, reverted frames, refunds, transient storage, nonce chains and
// transactions that must be rejected. Each block is split into mini-blocks as
// the sequencer does (system calls on the first, the EIP-2935 call possibly
// later behind a lazy slot) and executed:
//
//   - by exec.Sequential, the reference;
//   - by exec.Parallel in several configurations, over the same state: the
//     accepted transactions, receipts, rejections (with their error text), the
//     state diff and the gas must be byte-identical to the reference;
//   - by go-ethereum's own state.StateDB and core.ApplyTransaction: the state
//     root after every block must equal Kestrel's (its diffs folded into the
//     Merkle tries) and every transaction must have the same fate, status,
//     gas and logs.
//
// The reference's diffs are committed to the flat state before the next
// mini-block runs, and folded into the tries mini-block by mini-block (the
// sealer's way) or merged at the block's end (recovery's way). Besides the
// ERC-20 of package contracts, the contracts are hand-assembled (see
// diffChaosRuntime): a small interpreter whose calldata is a program, so that
// one deployed contract covers nested CALL/DELEGATECALL/STATICCALL/CALLCODE
// chains, CREATE and CREATE2 (with collisions and reverting constructors),
// SELFDESTRUCT and the rest; and a constant-product pool. Assembly gives exact
// control over the opcodes, and solc warns on SELFDESTRUCT (which the
// contracts package's artifact check refuses). TestChaosContract checks that
// they do what the generator assumes.
//
// TestParallelDifferential runs a few seeds in the default (short) mode and
// many with KESTREL_STATE_TESTS=full; KESTREL_DIFF_SCENARIO=<seed>:<knobs>:<blocks>:<txs>
// replays one scenario (a failure names it). FuzzParallelBlocks derives the
// seed and the knobs from the fuzzer's input.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/rawdb"
	gstate "github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/triedb"
	"github.com/ethereum/go-ethereum/triedb/hashdb"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/contracts"
	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/exec"
	"github.com/kestrel-l2/kestrel/core/state"
	"github.com/kestrel-l2/kestrel/core/statetest"
)

// --- a tiny EVM assembler ------------------------------------------------------

// diffAsm assembles EVM code with labels (two-byte jump targets).
type diffAsm struct {
	code   []byte
	labels map[string]int
	fixups map[int]string // offset of a PUSH2 operand -> label
	n      int
}

func newDiffAsm() *diffAsm {
	return &diffAsm{labels: make(map[string]int), fixups: make(map[int]string)}
}

func (a *diffAsm) op(ops ...vm.OpCode) *diffAsm {
	for _, o := range ops {
		a.code = append(a.code, byte(o))
	}
	return a
}

// push pushes v with the shortest PUSH (PUSH0 for zero).
func (a *diffAsm) push(v uint64) *diffAsm {
	if v == 0 {
		return a.op(vm.PUSH0)
	}
	b := new(big.Int).SetUint64(v).Bytes()
	a.code = append(a.code, byte(vm.PUSH1)+byte(len(b)-1))
	a.code = append(a.code, b...)
	return a
}

func (a *diffAsm) pushAddr(addr common.Address) *diffAsm {
	a.code = append(a.code, byte(vm.PUSH20))
	a.code = append(a.code, addr[:]...)
	return a
}

func (a *diffAsm) pushLabel(name string) *diffAsm {
	a.code = append(a.code, byte(vm.PUSH2))
	a.fixups[len(a.code)] = name
	a.code = append(a.code, 0, 0)
	return a
}

// label places a JUMPDEST named name.
func (a *diffAsm) label(name string) *diffAsm {
	return a.mark(name).op(vm.JUMPDEST)
}

// mark names the current offset without a JUMPDEST (for CODECOPY offsets).
func (a *diffAsm) mark(name string) *diffAsm {
	if _, dup := a.labels[name]; dup {
		panic("diffAsm: duplicate label " + name)
	}
	a.labels[name] = len(a.code)
	return a
}

func (a *diffAsm) jump(name string) *diffAsm  { return a.pushLabel(name).op(vm.JUMP) }
func (a *diffAsm) jumpi(name string) *diffAsm { return a.pushLabel(name).op(vm.JUMPI) }

func (a *diffAsm) fresh(prefix string) string {
	a.n++
	return fmt.Sprintf("%s.%d", prefix, a.n)
}

func (a *diffAsm) assemble() []byte {
	for at, name := range a.fixups {
		pos, ok := a.labels[name]
		if !ok {
			panic("diffAsm: undefined label " + name)
		}
		binary.BigEndian.PutUint16(a.code[at:], uint16(pos))
	}
	return a.code
}

// --- the chaos interpreter -----------------------------------------------------

// The chaos contract runs its calldata as a program of operations, each an
// opcode byte followed by fixed-size big-endian arguments (and, for calls and
// creations, a length-prefixed payload). Memory: [0x00] the program counter,
// [0x20] the address of the last contract created, [0x40] scratch, [0x80...]
// call data and init code. A zero result slot means "do not store the result".
const (
	chaosSStore      = 0x01 // slot(1) value(1): SSTORE
	chaosInc         = 0x02 // slot(1): slot += 1
	chaosTStore      = 0x03 // tslot(1) value(1): TSTORE
	chaosTLoad       = 0x04 // tslot(1) slot(1): SSTORE(slot, TLOAD(tslot))
	chaosLog         = 0x05 // topic(1) slot(1): LOG1(SLOAD(slot), topic)
	chaosCoinbaseBal = 0x06 // slot(1): SSTORE(slot, BALANCE(COINBASE))
	chaosBalance     = 0x07 // addr(20) slot(1): SSTORE(slot, BALANCE(addr))
	chaosCall        = 0x08 // kind(1) addr(20) value(2) gas(3) slot(1) len(2) data: kind&3 = CALL, DELEGATECALL, STATICCALL, CALLCODE; kind&0x80: call the last created contract
	chaosCreate      = 0x09 // value(2) slot(1) len(2) initcode
	chaosCreate2     = 0x0a // value(2) salt(1) slot(1) len(2) initcode
	chaosDestruct    = 0x0b // beneficiary(20): SELFDESTRUCT
	chaosRevert      = 0x0c // REVERT
	chaosInvalid     = 0x0d // INVALID (all gas consumed)
	chaosStop        = 0x0e // STOP
	chaosBlockHash   = 0x11 // slot(1): SSTORE(slot, BLOCKHASH(NUMBER-1))
	chaosCodeHash    = 0x12 // addr(20) slot(1): SSTORE(slot, EXTCODEHASH(addr))
	chaosSelfBal     = 0x14 // slot(1): SSTORE(slot, SELFBALANCE)
	chaosLoop        = 0x15 // n(2): burn gas in a loop
	chaosCopy        = 0x16 // from(1) to(1): SSTORE(to, SLOAD(from))
	chaosCaller      = 0x18 // slot(1): SSTORE(slot, CALLER)

	chaosCallLast = 0x80 // kind flag: target the last created contract
)

// Call kinds of chaosCall.
const (
	chaosKindCall = iota
	chaosKindDelegate
	chaosKindStatic
	chaosKindCallCode
)

var diffChaosRuntime = buildChaosRuntime()

func buildChaosRuntime() []byte {
	a := newDiffAsm()
	arg := func(off, n int) {
		a.push(0).op(vm.MLOAD).push(uint64(off)).op(vm.ADD, vm.CALLDATALOAD)
		if n < 32 {
			a.push(uint64(256 - 8*n)).op(vm.SHR)
		}
	}
	advance := func(k int) {
		a.push(0).op(vm.MLOAD).push(uint64(k)).op(vm.ADD).push(0).op(vm.MSTORE).jump("main")
	}
	advanceVar := func(fixed, lenOff int) {
		a.push(0).op(vm.MLOAD)
		arg(lenOff, 2)
		a.op(vm.ADD).push(uint64(fixed)).op(vm.ADD).push(0).op(vm.MSTORE).jump("main")
	}
	storeIf := func(slotOff int) { // stores the value on the stack unless the slot is 0
		arg(slotOff, 1)
		skip, done := a.fresh("skip"), a.fresh("done")
		a.op(vm.DUP1, vm.ISZERO).jumpi(skip).op(vm.SSTORE).jump(done)
		a.label(skip).op(vm.POP, vm.POP)
		a.label(done)
	}
	copyPayload := func(off, lenOff int) { // CALLDATACOPY(0x80, pc+off, len)
		arg(lenOff, 2)
		a.push(0).op(vm.MLOAD).push(uint64(off)).op(vm.ADD).push(0x80).op(vm.CALLDATACOPY)
	}

	handlers := []struct {
		op   byte
		name string
		body func()
	}{
		{chaosSStore, "sstore", func() { arg(2, 1); arg(1, 1); a.op(vm.SSTORE); advance(3) }},
		{chaosInc, "inc", func() { arg(1, 1); a.op(vm.SLOAD).push(1).op(vm.ADD); arg(1, 1); a.op(vm.SSTORE); advance(2) }},
		{chaosTStore, "tstore", func() { arg(2, 1); arg(1, 1); a.op(vm.TSTORE); advance(3) }},
		{chaosTLoad, "tload", func() { arg(1, 1); a.op(vm.TLOAD); arg(2, 1); a.op(vm.SSTORE); advance(3) }},
		{chaosLog, "log", func() {
			arg(2, 1)
			a.op(vm.SLOAD).push(0x40).op(vm.MSTORE)
			arg(1, 1)
			a.push(32).push(0x40).op(vm.LOG1)
			advance(3)
		}},
		{chaosCoinbaseBal, "coinbase", func() { a.op(vm.COINBASE, vm.BALANCE); arg(1, 1); a.op(vm.SSTORE); advance(2) }},
		{chaosBalance, "balance", func() { arg(1, 20); a.op(vm.BALANCE); arg(21, 1); a.op(vm.SSTORE); advance(22) }},
		{chaosCall, "call", func() {
			copyPayload(30, 28)
			arg(2, 20)
			arg(1, 1)
			a.push(chaosCallLast).op(vm.AND, vm.ISZERO).jumpi("call.addr")
			a.op(vm.POP).push(0x20).op(vm.MLOAD)
			a.label("call.addr").push(0x40).op(vm.MSTORE)
			arg(1, 1)
			a.push(3).op(vm.AND)
			a.op(vm.DUP1).push(chaosKindDelegate).op(vm.EQ).jumpi("call.delegate")
			a.op(vm.DUP1).push(chaosKindStatic).op(vm.EQ).jumpi("call.static")
			a.op(vm.DUP1).push(chaosKindCallCode).op(vm.EQ).jumpi("call.code")
			withValue := func(o vm.OpCode) {
				a.op(vm.POP).push(0).push(0)
				arg(28, 2)
				a.push(0x80)
				arg(22, 2)
				a.push(0x40).op(vm.MLOAD)
				arg(24, 3)
				a.op(o)
			}
			noValue := func(o vm.OpCode) {
				a.op(vm.POP).push(0).push(0)
				arg(28, 2)
				a.push(0x80).push(0x40).op(vm.MLOAD)
				arg(24, 3)
				a.op(o)
			}
			withValue(vm.CALL)
			a.jump("call.done")
			a.label("call.delegate")
			noValue(vm.DELEGATECALL)
			a.jump("call.done")
			a.label("call.static")
			noValue(vm.STATICCALL)
			a.jump("call.done")
			a.label("call.code")
			withValue(vm.CALLCODE)
			a.label("call.done")
			storeIf(27)
			advanceVar(30, 28)
		}},
		{chaosCreate, "create", func() {
			copyPayload(6, 4)
			arg(4, 2)
			a.push(0x80)
			arg(1, 2)
			a.op(vm.CREATE, vm.DUP1).push(0x20).op(vm.MSTORE)
			storeIf(3)
			advanceVar(6, 4)
		}},
		{chaosCreate2, "create2", func() {
			copyPayload(7, 5)
			arg(3, 1)
			arg(5, 2)
			a.push(0x80)
			arg(1, 2)
			a.op(vm.CREATE2, vm.DUP1).push(0x20).op(vm.MSTORE)
			storeIf(4)
			advanceVar(7, 5)
		}},
		{chaosDestruct, "destruct", func() { arg(1, 20); a.op(vm.SELFDESTRUCT) }},
		{chaosRevert, "revert", func() { a.push(0).push(0).op(vm.REVERT) }},
		{chaosInvalid, "invalid", func() { a.op(vm.INVALID) }},
		{chaosStop, "stopop", func() { a.op(vm.STOP) }},
		{chaosBlockHash, "blockhash", func() {
			a.push(1).op(vm.NUMBER, vm.SUB, vm.BLOCKHASH)
			arg(1, 1)
			a.op(vm.SSTORE)
			advance(2)
		}},
		{chaosCodeHash, "codehash", func() { arg(1, 20); a.op(vm.EXTCODEHASH); arg(21, 1); a.op(vm.SSTORE); advance(22) }},
		{chaosSelfBal, "selfbalance", func() { a.op(vm.SELFBALANCE); arg(1, 1); a.op(vm.SSTORE); advance(2) }},
		{chaosLoop, "loop", func() {
			arg(1, 2)
			a.label("loop.top").op(vm.DUP1, vm.ISZERO).jumpi("loop.end")
			a.push(1).op(vm.SWAP1, vm.SUB).jump("loop.top")
			a.label("loop.end").op(vm.POP)
			advance(3)
		}},
		{chaosCopy, "copy", func() { arg(1, 1); a.op(vm.SLOAD); arg(2, 1); a.op(vm.SSTORE); advance(3) }},
		{chaosCaller, "caller", func() { a.op(vm.CALLER); arg(1, 1); a.op(vm.SSTORE); advance(2) }},
	}

	a.label("main")
	a.push(0).op(vm.MLOAD, vm.CALLDATASIZE, vm.GT, vm.ISZERO).jumpi("stop")
	a.push(0).op(vm.MLOAD, vm.CALLDATALOAD).push(248).op(vm.SHR)
	for _, h := range handlers {
		a.op(vm.DUP1).push(uint64(h.op)).op(vm.EQ).jumpi(h.name)
	}
	a.label("stop").op(vm.STOP)
	for _, h := range handlers {
		a.label(h.name).op(vm.POP)
		h.body()
	}
	return a.assemble()
}

// Constructor kinds of diffChaosInit.
const (
	initClone        = iota // deploys the chaos interpreter
	initCloneStore          // deploys it after an SSTORE, a TSTORE and a LOG0
	initEmpty               // deploys no code (an account with nonce 1)
	initRevert              // writes storage, then reverts
	initSelfDestruct        // writes storage, then self-destructs to a beneficiary
	initBadCode             // returns code starting with 0xEF (EIP-3541)
	initInvalid             // INVALID: all gas consumed
	initKinds
)

// diffChaosInit is the init code of a constructor kind; beneficiary is used by
// initSelfDestruct.
func diffChaosInit(kind int, beneficiary common.Address) []byte {
	a := newDiffAsm()
	switch kind {
	case initCloneStore:
		a.push(7).push(1).op(vm.SSTORE).push(1).push(1).op(vm.TSTORE).push(0).push(0).op(vm.LOG0)
	case initEmpty:
		return a.push(0).push(0).op(vm.RETURN).assemble()
	case initRevert:
		return a.push(9).push(2).op(vm.SSTORE).push(0).push(0).op(vm.REVERT).assemble()
	case initSelfDestruct:
		return a.push(5).push(3).op(vm.SSTORE).pushAddr(beneficiary).op(vm.SELFDESTRUCT).assemble()
	case initBadCode:
		return a.push(0xef).push(0).op(vm.MSTORE8).push(1).push(0).op(vm.RETURN).assemble()
	case initInvalid:
		return a.op(vm.INVALID).assemble()
	}
	n := uint64(len(diffChaosRuntime))
	a.push(n).pushLabel("runtime").push(0).op(vm.CODECOPY).push(n).push(0).op(vm.RETURN).mark("runtime")
	return append(a.assemble(), diffChaosRuntime...)
}

// diffProg builds chaos programs.
type diffProg []byte

func (p diffProg) sstore(slot, v byte) diffProg    { return append(p, chaosSStore, slot, v) }
func (p diffProg) inc(slot byte) diffProg          { return append(p, chaosInc, slot) }
func (p diffProg) tstore(slot, v byte) diffProg    { return append(p, chaosTStore, slot, v) }
func (p diffProg) tload(tslot, slot byte) diffProg { return append(p, chaosTLoad, tslot, slot) }
func (p diffProg) log(topic, slot byte) diffProg   { return append(p, chaosLog, topic, slot) }
func (p diffProg) coinbaseBalance(slot byte) diffProg {
	return append(p, chaosCoinbaseBal, slot)
}
func (p diffProg) balance(addr common.Address, slot byte) diffProg {
	return append(append(append(p, chaosBalance), addr[:]...), slot)
}
func (p diffProg) codeHash(addr common.Address, slot byte) diffProg {
	return append(append(append(p, chaosCodeHash), addr[:]...), slot)
}
func (p diffProg) call(kind byte, to common.Address, value uint16, gas uint32, slot byte, data []byte) diffProg {
	p = append(p, chaosCall, kind)
	p = append(p, to[:]...)
	p = binary.BigEndian.AppendUint16(p, value)
	p = append(p, byte(gas>>16), byte(gas>>8), byte(gas))
	p = append(p, slot)
	p = binary.BigEndian.AppendUint16(p, uint16(len(data)))
	return append(p, data...)
}
func (p diffProg) create(value uint16, slot byte, init []byte) diffProg {
	p = binary.BigEndian.AppendUint16(append(p, chaosCreate), value)
	p = binary.BigEndian.AppendUint16(append(p, slot), uint16(len(init)))
	return append(p, init...)
}
func (p diffProg) create2(value uint16, salt, slot byte, init []byte) diffProg {
	p = binary.BigEndian.AppendUint16(append(p, chaosCreate2), value)
	p = binary.BigEndian.AppendUint16(append(p, salt, slot), uint16(len(init)))
	return append(p, init...)
}
func (p diffProg) selfDestruct(to common.Address) diffProg {
	return append(append(p, chaosDestruct), to[:]...)
}
func (p diffProg) revert() diffProg             { return append(p, chaosRevert) }
func (p diffProg) invalid() diffProg            { return append(p, chaosInvalid) }
func (p diffProg) stop() diffProg               { return append(p, chaosStop) }
func (p diffProg) blockHash(slot byte) diffProg { return append(p, chaosBlockHash, slot) }
func (p diffProg) selfBalance(slot byte) diffProg {
	return append(p, chaosSelfBal, slot)
}
func (p diffProg) loop(n uint16) diffProg {
	return binary.BigEndian.AppendUint16(append(p, chaosLoop), n)
}
func (p diffProg) copySlot(from, to byte) diffProg { return append(p, chaosCopy, from, to) }
func (p diffProg) caller(slot byte) diffProg       { return append(p, chaosCaller, slot) }

// --- the AMM pool --------------------------------------------------------------

// diffPoolTopic is topic0 of the pool's swap log (topic1 is the caller).
const diffPoolTopic = 0x5a

// diffPoolCode is a constant-product pool over two reserves (slots 0 and 1).
// Calldata: dir(1) amountIn(8) minOut(8). It moves the reserves, credits the
// output to the caller's slot (the caller's address as the key), logs, and
// reverts when the output is zero or below minOut, so that a swap's fate
// depends on the swaps ordered before it.
var diffPoolCode = func() []byte {
	a := newDiffAsm()
	a.push(0).op(vm.CALLDATALOAD).push(248).op(vm.SHR).push(1).op(vm.AND).push(0).op(vm.MSTORE) // dir
	a.push(1).op(vm.CALLDATALOAD).push(192).op(vm.SHR).push(0x20).op(vm.MSTORE)                 // in
	a.push(9).op(vm.CALLDATALOAD).push(192).op(vm.SHR).push(0x40).op(vm.MSTORE)                 // minOut
	a.push(0).op(vm.MLOAD, vm.SLOAD).push(0x60).op(vm.MSTORE)                                   // rIn
	a.push(0).op(vm.MLOAD).push(1).op(vm.XOR, vm.SLOAD).push(0x80).op(vm.MSTORE)                // rOut
	a.push(0x20).op(vm.MLOAD).push(0x60).op(vm.MLOAD, vm.ADD)                                   // rIn + in
	a.push(0x20).op(vm.MLOAD).push(0x80).op(vm.MLOAD, vm.MUL, vm.DIV)                           // rOut*in / (rIn+in)
	a.push(0xa0).op(vm.MSTORE)
	a.push(0xa0).op(vm.MLOAD, vm.ISZERO).jumpi("revert")
	a.push(0x40).op(vm.MLOAD).push(0xa0).op(vm.MLOAD, vm.LT).jumpi("revert")
	a.push(0x20).op(vm.MLOAD).push(0x60).op(vm.MLOAD, vm.ADD).push(0).op(vm.MLOAD, vm.SSTORE)
	a.push(0xa0).op(vm.MLOAD).push(0x80).op(vm.MLOAD, vm.SUB).push(0).op(vm.MLOAD).push(1).op(vm.XOR, vm.SSTORE)
	a.push(0xa0).op(vm.MLOAD, vm.CALLER, vm.SLOAD, vm.ADD, vm.CALLER, vm.SSTORE)
	a.op(vm.CALLER).push(diffPoolTopic).push(32).push(0xa0).op(vm.LOG2, vm.STOP)
	a.label("revert").push(0).push(0).op(vm.REVERT)
	return a.assemble()
}()

func diffSwapData(dir byte, in, minOut uint64) []byte {
	b := []byte{dir}
	b = binary.BigEndian.AppendUint64(b, in)
	return binary.BigEndian.AppendUint64(b, minOut)
}

// diffERC20BalanceSlot is the slot of balanceOf[holder] in contracts/src/ERC20.sol
// (the mapping is its fourth state variable).
func diffERC20BalanceSlot(holder common.Address) common.Hash {
	return crypto.Keccak256Hash(common.LeftPadBytes(holder[:], 32), common.LeftPadBytes([]byte{3}, 32))
}

// diffERC20AllowanceSlot is the slot of allowance[owner][spender] (the fifth
// state variable).
func diffERC20AllowanceSlot(owner, spender common.Address) common.Hash {
	inner := crypto.Keccak256(common.LeftPadBytes(owner[:], 32), common.LeftPadBytes([]byte{4}, 32))
	return crypto.Keccak256Hash(common.LeftPadBytes(spender[:], 32), inner)
}

// --- knobs and the world ------------------------------------------------------

// diffKnobs shape a scenario; they are derived from a 32-bit value so that a
// scenario is named by (seed, knobs).
type diffKnobs struct {
	blocks   int
	txs      int  // transactions per block (about)
	senders  int  // funded EOAs; the last one is poor
	minis    int  // at most this many mini-blocks per block
	osaka    bool // Osaka rules instead of Prague
	tightGas bool // a block gas limit that transactions hit
	coinbase int  // 0 fresh, 1 a sender, 2 a chaos contract, 3 an empty account with storage, 4 varies per block
	pin      bool // keep a view pinned over each block (reads go through the flat state's layers)
	hot      bool // concentrate on few senders and slots
}

func diffDecodeKnobs(k uint32, maxBlocks, maxTxs int) diffKnobs {
	kn := diffKnobs{
		blocks:   1 + int(k&3),
		txs:      6 + 4*int(k>>2&15),
		senders:  3 + int(k>>6&7),
		minis:    1 + int(k>>9&3),
		osaka:    k>>11&1 == 1,
		tightGas: k>>12&7 == 0,
		coinbase: int(k>>15&7) % 5,
		pin:      k>>18&1 == 1,
		hot:      k>>19&1 == 1,
	}
	kn.blocks = min(kn.blocks, maxBlocks)
	kn.txs = min(kn.txs, maxTxs)
	return kn
}

// diffWorld is a scenario's generator: accounts, contracts, and the random
// source transactions are drawn from.
type diffWorld struct {
	seed    uint64
	kn      diffKnobs
	rng     *rand.Rand
	config  *params.ChainConfig
	chainID *big.Int
	signer  types.Signer

	keys      []*ecdsa.PrivateKey
	eoas      []common.Address // eoas[len-1] is poor
	chaos     []common.Address
	tokens    []common.Address // tokens[0] is in the pre-state; others are deployed by transactions
	pool      common.Address
	empties   []common.Address // no nonce, balance or code, but storage
	fresh     []common.Address // never in the pre-state
	create2   []common.Address // where chaos contracts' CREATE2 may land (one collides with storage)
	precomps  []common.Address
	coinbases []common.Address
	alloc     types.GenesisAlloc
	genesisTS uint64
	nonces    map[common.Address]uint64 // expected nonces while a block is generated
}

const (
	diffRich = 1000 // ETH per funded EOA
	// The salts the generator uses with CREATE2: diffSaltCollide only with the
	// clone init code, which from chaos[0] lands on an account with storage.
	diffSaltA, diffSaltB, diffSaltCollide = 1, 2, 9
)

var diffEther = big.NewInt(params.Ether)

func newDiffWorld(seed uint64, kn diffKnobs) *diffWorld {
	w := &diffWorld{seed: seed, kn: kn, rng: rand.New(rand.NewPCG(seed, 0x6b657374726c)), genesisTS: 1_700_000_000}
	g := chain.DevGenesis()
	if kn.osaka {
		g.Fork = chain.ForkOsaka
	}
	w.config = g.ChainConfig()
	w.chainID = w.config.ChainID
	w.signer = types.LatestSignerForChainID(w.chainID)
	w.alloc = make(types.GenesisAlloc)
	for addr, a := range g.Alloc { // the EIP-4788 and EIP-2935 system contracts
		if len(a.Code) > 0 {
			w.alloc[addr] = types.Account{Code: a.Code, Nonce: a.Nonce, Balance: new(big.Int).Set(a.Balance)}
		}
	}
	addr := func(tag string, i int) common.Address {
		return common.BytesToAddress(crypto.Keccak256([]byte(tag), binary.BigEndian.AppendUint64(nil, seed), []byte{byte(i)}))
	}
	for i := 0; i < kn.senders; i++ {
		key, err := crypto.ToECDSA(crypto.Keccak256([]byte("kestrel/diff/key"), binary.BigEndian.AppendUint64(nil, seed), []byte{byte(i)}))
		if err != nil {
			panic(err) // a 32-byte hash is a valid key but with negligible probability
		}
		w.keys = append(w.keys, key)
		w.eoas = append(w.eoas, crypto.PubkeyToAddress(key.PublicKey))
	}
	for i := 0; i < 4; i++ {
		w.chaos = append(w.chaos, addr("chaos", i))
	}
	w.tokens = []common.Address{addr("token", 0)}
	w.pool = addr("pool", 0)
	for i := 0; i < 3; i++ {
		w.empties = append(w.empties, addr("empty", i))
		w.fresh = append(w.fresh, addr("fresh", i))
	}
	w.precomps = []common.Address{common.BytesToAddress([]byte{1}), common.BytesToAddress([]byte{2}), common.BytesToAddress([]byte{4}), common.BytesToAddress([]byte{9})}

	// Funded EOAs (the last one can pay for a few transactions only), each
	// holding tokens; every other one starts with a nonce.
	for i, a := range w.eoas {
		bal := new(big.Int).Mul(big.NewInt(diffRich), diffEther)
		if i == len(w.eoas)-1 {
			bal = big.NewInt(3e14 + int64(w.rng.IntN(1e12)))
		}
		w.alloc[a] = types.Account{Balance: bal, Nonce: uint64(i % 2 * 5)}
	}
	token := types.Account{Code: contracts.ERC20().DeployedBytecode, Balance: new(big.Int), Storage: map[common.Hash]common.Hash{}}
	supply := new(big.Int)
	holders := append(append([]common.Address{}, w.eoas...), w.chaos...)
	for _, h := range holders {
		amount := new(big.Int).Mul(big.NewInt(1000), diffEther)
		token.Storage[diffERC20BalanceSlot(h)] = common.BigToHash(amount)
		supply.Add(supply, amount)
	}
	token.Storage[common.BigToHash(big.NewInt(2))] = common.BigToHash(supply)
	// Each EOA lets the next one spend some of its tokens, and chaos[0] all of
	// them (an allowance of 2^256-1 is never decreased).
	for i, owner := range w.eoas {
		next := w.eoas[(i+1)%len(w.eoas)]
		token.Storage[diffERC20AllowanceSlot(owner, next)] = common.BigToHash(new(big.Int).Mul(big.NewInt(10), diffEther))
		token.Storage[diffERC20AllowanceSlot(owner, w.chaos[0])] = common.MaxHash
	}
	w.alloc[w.tokens[0]] = token
	w.alloc[w.pool] = types.Account{Code: diffPoolCode, Balance: new(big.Int), Storage: map[common.Hash]common.Hash{
		{31: 0}: common.BigToHash(diffEther), {31: 1}: common.BigToHash(diffEther),
	}}
	for i, c := range w.chaos {
		st := map[common.Hash]common.Hash{}
		for s := 0; s < 16; s++ {
			if w.rng.IntN(2) == 0 {
				st[common.Hash{31: byte(s)}] = common.Hash{31: byte(1 + w.rng.IntN(200))}
			}
		}
		w.alloc[c] = types.Account{Code: diffChaosRuntime, Nonce: 1, Balance: new(big.Int).Mul(big.NewInt(int64(i)), diffEther), Storage: st}
	}
	for _, e := range w.empties {
		w.alloc[e] = types.Account{Balance: new(big.Int), Storage: map[common.Hash]common.Hash{{31: 1}: {31: 0x11}, {31: 2}: {31: 0x22}}}
	}
	// Where the chaos contracts' CREATE2 lands: some of these become contracts
	// during the run; the collision address holds storage only (EIP-7610).
	clone, cloneStore := diffChaosInit(initClone, common.Address{}), diffChaosInit(initCloneStore, common.Address{})
	for _, c := range w.chaos {
		for _, salt := range []byte{diffSaltA, diffSaltB} {
			for _, init := range [][]byte{clone, cloneStore} {
				w.create2 = append(w.create2, crypto.CreateAddress2(c, common.Hash{31: salt}, crypto.Keccak256(init)))
			}
		}
	}
	collide := crypto.CreateAddress2(w.chaos[0], common.Hash{31: diffSaltCollide}, crypto.Keccak256(clone))
	w.alloc[collide] = types.Account{Balance: new(big.Int), Storage: map[common.Hash]common.Hash{{31: 5}: {31: 5}}}
	w.create2 = append(w.create2, collide)

	switch kn.coinbase {
	case 0:
		w.coinbases = []common.Address{addr("coinbase", 0)}
	case 1:
		w.coinbases = []common.Address{w.eoas[0]}
	case 2:
		w.coinbases = []common.Address{w.chaos[1]}
	case 3:
		w.coinbases = []common.Address{w.empties[0]}
	default:
		w.coinbases = []common.Address{addr("coinbase", 0), w.eoas[0], w.chaos[1], w.empties[0], w.eoas[len(w.eoas)-1]}
	}
	return w
}

// env is block number's environment.
func (w *diffWorld) env(number uint64) *exec.Env {
	baseFees := []int64{1, 7, params.GWei, params.GWei + int64(w.rng.IntN(params.GWei))}
	gasLimit := uint64(30_000_000)
	if w.kn.tightGas {
		gasLimit = 3_000_000 + uint64(w.rng.IntN(3_000_000))
	}
	return &exec.Env{
		Config: w.config,
		Block: chain.BlockEnv{
			Number: number, Time: w.genesisTS + number, BaseFee: big.NewInt(baseFees[w.rng.IntN(len(baseFees))]),
			GasLimit: gasLimit, Coinbase: w.coinbases[w.rng.IntN(len(w.coinbases))], Random: chain.RandomFor(w.chainID.Uint64(), number),
		},
		GetHash: w.blockHash,
	}
}

// blockHash is the (synthetic) hash of block n: BLOCKHASH and the EIP-2935
// parent hash on both Kestrel and go-ethereum.
func (w *diffWorld) blockHash(n uint64) common.Hash {
	return crypto.Keccak256Hash([]byte("kestrel/diff/block"), binary.BigEndian.AppendUint64(nil, w.seed), binary.BigEndian.AppendUint64(nil, n))
}

func (w *diffWorld) pick(addrs []common.Address) common.Address { return addrs[w.rng.IntN(len(addrs))] }

func (w *diffWorld) chance(percent int) bool { return w.rng.IntN(100) < percent }

// anyAddress draws from every kind of account the scenario knows.
func (w *diffWorld) anyAddress(env *exec.Env) common.Address {
	switch w.rng.IntN(10) {
	case 0:
		return w.pick(w.eoas)
	case 1:
		return w.pick(w.chaos)
	case 2:
		return w.pick(w.tokens)
	case 3:
		return w.pool
	case 4:
		return w.pick(w.empties)
	case 5:
		return w.pick(w.fresh)
	case 6:
		return w.pick(w.create2)
	case 7:
		return w.pick(w.precomps)
	case 8:
		return env.Block.Coinbase
	default:
		return []common.Address{params.HistoryStorageAddress, params.BeaconRootsAddress, {}}[w.rng.IntN(3)]
	}
}

// slot draws a storage slot of the chaos contracts: mostly a few hot ones.
func (w *diffWorld) slot() byte {
	if w.kn.hot || w.chance(60) {
		return byte(w.rng.IntN(4))
	}
	return byte(w.rng.IntN(16))
}

func (w *diffWorld) value() byte {
	switch w.rng.IntN(4) {
	case 0:
		return 0
	case 1:
		return 1
	default:
		return byte(w.rng.IntN(256))
	}
}

// resultSlot is where a call's or creation's result goes (0: nowhere).
func (w *diffWorld) resultSlot() byte {
	if w.chance(40) {
		return 0
	}
	return byte(0x20 + w.rng.IntN(4))
}

// erc20Call draws an ERC-20 call by caller (zero when the caller is a
// contract the generator does not follow).
func (w *diffWorld) erc20Call(caller common.Address) []byte {
	to := w.pick(append(append([]common.Address{}, w.eoas...), w.chaos[0], w.pool, w.fresh[0]))
	amount := big.NewInt(int64(w.rng.IntN(1e9)))
	if w.chance(10) {
		amount = new(big.Int).Mul(big.NewInt(2000), diffEther) // more than any holder has
	}
	switch w.rng.IntN(10) {
	case 0:
		to = common.Address{} // reverts: transfer to the zero address
	case 1:
		return contracts.ERC20ApproveData(w.pick(append(append([]common.Address{}, w.eoas...), w.chaos...)), amount)
	case 2, 3:
		// The owner approved the caller in the pre-state when it precedes it
		// among the EOAs; any other pair may have been approved since, or not.
		from := w.pick(w.eoas)
		for i, a := range w.eoas {
			if a == caller && w.chance(80) {
				from = w.eoas[(i+len(w.eoas)-1)%len(w.eoas)]
			}
		}
		return contracts.ERC20TransferFromData(from, to, amount)
	}
	return contracts.ERC20TransferData(to, amount)
}

func (w *diffWorld) swapCall() []byte {
	in := uint64(1 + w.rng.IntN(1e16))
	var minOut uint64
	if w.chance(40) {
		minOut = in * uint64(90+w.rng.IntN(15)) / 100 // near the price: fails once the pool moved
	}
	return diffSwapData(byte(w.rng.IntN(2)), in, minOut)
}

// prog draws a chaos program; depth bounds the nesting of calls.
func (w *diffWorld) prog(env *exec.Env, depth int) diffProg {
	var p diffProg
	n := 1 + w.rng.IntN(5)
	for i := 0; i < n; i++ {
		switch r := w.rng.IntN(100); {
		case r < 14:
			p = p.sstore(w.slot(), w.value())
		case r < 22:
			p = p.inc(w.slot())
		case r < 27:
			s, v := w.slot(), w.value()
			p = p.sstore(s, v).sstore(s, 0) // set and clear: refunds
		case r < 32:
			t := byte(w.rng.IntN(3))
			p = p.tstore(t, w.value()).tload(t, w.slot())
		case r < 35:
			p = p.tload(byte(w.rng.IntN(3)), w.slot()) // maybe set by an earlier frame
		case r < 40:
			p = p.log(byte(w.rng.IntN(256)), w.slot())
		case r < 46:
			p = p.coinbaseBalance(w.slot())
		case r < 50:
			p = p.balance(w.anyAddress(env), w.slot())
		case r < 52:
			p = p.codeHash(w.anyAddress(env), w.slot())
		case r < 54:
			p = p.selfBalance(w.slot())
		case r < 56:
			p = p.blockHash(w.slot())
		case r < 58:
			p = p.caller(w.slot())
		case r < 61:
			p = p.copySlot(w.slot(), w.slot())
		case r < 63:
			p = p.loop(uint16(w.rng.IntN(300)))
		case r < 80:
			p = w.call(env, p, depth)
		case r < 86:
			p = w.create(env, p, depth)
		case r < 88:
			p = p.selfDestruct(w.anyAddress(env)) // a pre-existing contract (EIP-6780: no deletion), or a frame's
			return p
		case r < 90:
			return p.revert()
		case r < 91:
			return p.invalid()
		default:
			p = p.stop()
			return p
		}
	}
	return p
}

func (w *diffWorld) salt() byte { return []byte{diffSaltA, diffSaltB}[w.rng.IntN(2)] }

func (w *diffWorld) callKind() byte {
	switch r := w.rng.IntN(10); {
	case r < 5:
		return chaosKindCall
	case r < 7:
		return chaosKindDelegate
	case r < 9:
		return chaosKindStatic
	default:
		return chaosKindCallCode
	}
}

func (w *diffWorld) callGas() uint32 {
	switch w.rng.IntN(6) {
	case 0:
		return uint32(w.rng.IntN(40_000)) // the inner frame may run out of gas
	case 1:
		return 0 // the stipend only
	default:
		return 0xffffff // all that is left (63/64)
	}
}

func (w *diffWorld) callValue() uint16 {
	if w.chance(60) {
		return 0
	}
	return uint16(w.rng.IntN(5000))
}

// call appends a call from a chaos frame to some target.
func (w *diffWorld) call(env *exec.Env, p diffProg, depth int) diffProg {
	kind, value, gas, slot := w.callKind(), w.callValue(), w.callGas(), w.resultSlot()
	switch r := w.rng.IntN(10); {
	case r < 3 && depth < 2:
		return p.call(kind, w.pick(w.chaos), value, gas, slot, w.prog(env, depth+1))
	case r < 4:
		return p.call(kind, w.pick(w.tokens), value, gas, slot, w.erc20Call(common.Address{}))
	case r < 5:
		return p.call(kind, w.pool, value, gas, slot, w.swapCall())
	case r < 6:
		var num common.Hash
		new(big.Int).SetUint64(env.Block.Number - uint64(w.rng.IntN(3))).FillBytes(num[:])
		return p.call(kind, params.HistoryStorageAddress, value, gas, slot, num[:]) // reads the EIP-2935 slot (lazy before the call)
	case r < 7:
		var ts common.Hash
		new(big.Int).SetUint64(env.Block.Time - uint64(w.rng.IntN(2))).FillBytes(ts[:])
		return p.call(kind, params.BeaconRootsAddress, value, gas, slot, ts[:])
	case r < 8 && depth < 2:
		return p.call(kind, w.pick(w.create2), value, gas, slot, w.prog(env, depth+1))
	default:
		data := make([]byte, w.rng.IntN(3)*32)
		for i := range data {
			data[i] = byte(w.rng.IntN(256))
		}
		return p.call(kind, w.anyAddress(env), value, gas, slot, data)
	}
}

// create appends a CREATE or CREATE2, often followed by a call into the new
// contract that may destroy it in the same transaction (EIP-6780).
func (w *diffWorld) create(env *exec.Env, p diffProg, depth int) diffProg {
	kind := w.rng.IntN(initKinds)
	if w.chance(40) {
		kind = initClone
	}
	init := diffChaosInit(kind, w.anyAddress(env))
	value := w.callValue()
	switch w.rng.IntN(3) {
	case 0:
		p = p.create(value, w.resultSlot(), init)
	case 1:
		salt := w.salt()
		if kind == initClone && w.chance(20) {
			salt = diffSaltCollide // lands on storage (from chaos[0]) or repeats
		}
		p = p.create2(value, salt, w.resultSlot(), init)
	default:
		salt := w.salt()
		p = p.create2(value, salt, w.resultSlot(), init).create2(value, salt, w.resultSlot(), init) // the second collides
	}
	if (kind == initClone || kind == initCloneStore) && depth < 2 && w.chance(70) {
		sub := w.prog(env, depth+1)
		if w.chance(60) {
			sub = diffProg{}.sstore(3, 3).selfDestruct(w.anyAddress(env))
		}
		p = p.call(chaosCallLast|w.callKind(), common.Address{}, w.callValue(), 0xffffff, w.resultSlot(), sub)
	}
	return p
}

// --- transactions ---------------------------------------------------------------

type diffTxSpec struct {
	from  int
	nonce uint64
	to    *common.Address
	value *big.Int
	gas   uint64
	data  []byte
	// fees: a tip and a fee cap (legacy: gasPrice = min(cap, base + tip))
	tip, feeCap *big.Int
	typ         byte
	// tightGas, when set, replaces gas by the intrinsic gas plus up to this
	// much: likely to run out of gas, not to be rejected.
	tightGas uint64
	// invalid: the nonce is not expected to advance
	invalid bool
}

// sender draws a sender among the rich ones (the poor one sends only the
// transactions meant for it): with hot knobs, mostly the first two.
func (w *diffWorld) sender() int {
	rich := len(w.eoas) - 1
	if w.kn.hot && w.chance(70) {
		return w.rng.IntN(min(2, rich))
	}
	a, b := w.rng.IntN(rich), w.rng.IntN(rich)
	return min(a, b) // low indices more often: nonce chains
}

// fees draws a valid tip and fee cap for base fee base.
func (w *diffWorld) fees(base *big.Int) (tip, feeCap *big.Int) {
	switch w.rng.IntN(4) {
	case 0:
		tip = new(big.Int)
	case 1:
		tip = big.NewInt(1)
	default:
		tip = big.NewInt(int64(w.rng.IntN(2 * params.GWei)))
	}
	feeCap = new(big.Int).Add(base, tip)
	if w.chance(50) {
		feeCap.Add(feeCap, big.NewInt(int64(w.rng.IntN(params.GWei))))
	}
	return tip, feeCap
}

// block draws block env.Block.Number's transactions; r is the state before it
// (for the senders' nonces).
func (w *diffWorld) block(env *exec.Env, r state.Reader) []exec.Tx {
	w.nonces = make(map[common.Address]uint64)
	for _, a := range w.eoas {
		acct, _ := r.Account(a)
		w.nonces[a] = acct.Nonce
	}
	n := w.kn.txs/2 + w.rng.IntN(w.kn.txs/2+1)
	txs := make([]exec.Tx, 0, n)
	for len(txs) < n {
		s := w.tx(env)
		txs = append(txs, w.sign(env, s))
	}
	return txs
}

func (w *diffWorld) tx(env *exec.Env) diffTxSpec {
	base := env.Block.BaseFee
	s := diffTxSpec{from: w.sender(), value: new(big.Int), typ: byte(w.rng.IntN(3))}
	s.tip, s.feeCap = w.fees(base)
	from := w.eoas[s.from]
	to := func(a common.Address) *common.Address { return &a }
	bigGas := uint64(1_500_000)
	if w.kn.tightGas {
		bigGas = 400_000
	}
	tight := func(g uint64) uint64 { // sometimes too little gas: out of gas, not rejected
		if w.chance(12) {
			s.tightGas = g
		}
		return g
	}
	switch r := w.rng.IntN(100); {
	case r < 18: // ETH transfers
		// fresh[0] is a sink: its balance is only added to, until a
		// contract reads it.
		dst := []common.Address{from, w.pick(w.eoas), env.Block.Coinbase, w.fresh[0], w.fresh[0], w.pick(w.fresh), w.pick(w.empties), w.pick(w.chaos),
			w.pick(w.precomps), w.pick(w.create2)}[w.rng.IntN(10)]
		s.to = to(dst)
		switch w.rng.IntN(3) {
		case 0: // zero value
		case 1:
			s.value = big.NewInt(int64(1 + w.rng.IntN(1e9)))
		default:
			s.value = new(big.Int).Mul(big.NewInt(int64(1+w.rng.IntN(5))), big.NewInt(1e16))
		}
		s.gas = 21_000
		if w.chance(30) || dst == w.chaos[0] || dst == w.chaos[1] || dst == w.chaos[2] || dst == w.chaos[3] {
			s.gas = 60_000
		}
	case r < 32: // ERC-20
		s.to = to(w.pick(w.tokens))
		s.data = w.erc20Call(from)
		s.gas = tight(100_000)
	case r < 44: // swaps on the shared pool
		s.to = to(w.pool)
		s.data = w.swapCall()
		s.gas = tight(120_000)
		if w.chance(20) {
			s.value = big.NewInt(int64(w.rng.IntN(1000)))
		}
	case r < 68: // chaos programs
		s.to = to(w.pick(w.chaos))
		if w.chance(15) {
			s.to = to(w.pick(w.create2)) // a contract created earlier, or nothing
		}
		s.data = w.prog(env, 0)
		s.gas = tight(bigGas)
		if w.chance(20) {
			s.value = big.NewInt(int64(w.rng.IntN(1e6)))
		}
	case r < 74: // read the fee recipient's (or the sink's) balance, then maybe pay it
		p := diffProg{}.coinbaseBalance(w.slot())
		if w.chance(50) {
			p = p.call(chaosKindCall, env.Block.Coinbase, uint16(w.rng.IntN(1000)), 0, w.resultSlot(), nil)
		}
		if w.chance(30) {
			p = p.balance(env.Block.Coinbase, w.slot()).inc(w.slot())
		}
		if w.chance(30) {
			p = p.balance(w.fresh[0], w.slot())
		}
		s.to = to(w.pick(w.chaos))
		s.data = p
		s.gas = 200_000
	case r < 82: // contract creation by a transaction
		switch w.rng.IntN(4) {
		case 0:
			supply := new(big.Int).Mul(big.NewInt(1e6), diffEther)
			data, err := contracts.ERC20DeployData("Diff", "DIF", supply)
			if err != nil {
				panic(err)
			}
			s.data = data
			w.tokens = append(w.tokens, crypto.CreateAddress(from, w.nonces[from]))
		default:
			s.data = diffChaosInit(w.rng.IntN(initKinds), w.anyAddress(env))
		}
		s.gas = tight(bigGas)
		if w.chance(30) {
			s.value = big.NewInt(int64(w.rng.IntN(1e9)))
		}
	case r < 90: // self-destruction: created and destroyed in one transaction, or pre-existing
		p := diffProg{}
		if w.chance(50) {
			p = p.create2(w.callValue(), w.salt(), w.resultSlot(), diffChaosInit(initCloneStore, common.Address{})).
				call(chaosCallLast|chaosKindCall, common.Address{}, 0, 0xffffff, w.resultSlot(), diffProg{}.inc(1).selfDestruct(w.anyAddress(env)))
			if w.chance(30) {
				p = p.revert() // and the whole frame reverts
			}
		} else {
			p = p.sstore(w.slot(), w.value()).selfDestruct(w.anyAddress(env))
		}
		s.to = to(w.pick(w.chaos))
		s.data = p
		s.gas = bigGas
	default: // invalid transactions
		w.invalid(env, &s)
		return s
	}
	w.nonce(&s)
	return s
}

// nonce gives s its sender's next nonce.
func (w *diffWorld) nonce(s *diffTxSpec) {
	a := w.eoas[s.from]
	s.nonce = w.nonces[a]
	w.nonces[a]++
}

// invalid makes s a transaction the engines must reject.
func (w *diffWorld) invalid(env *exec.Env, s *diffTxSpec) {
	a := w.eoas[s.from]
	dst := w.pick(w.eoas)
	s.to, s.gas, s.invalid = &dst, 21_000, true
	s.nonce = w.nonces[a]
	base := env.Block.BaseFee
	switch w.rng.IntN(8) {
	case 0: // nonce gap
		s.nonce += 1 + uint64(w.rng.IntN(3))
	case 1: // nonce too low
		if s.nonce == 0 {
			s.nonce = 1 + uint64(w.rng.IntN(2)) // a gap instead
		} else {
			s.nonce -= 1 + uint64(w.rng.IntN(int(min(s.nonce, 3))))
		}
	case 2: // insufficient balance for value
		s.value = new(big.Int).Mul(big.NewInt(2*diffRich), diffEther)
	case 3: // fee cap below the base fee
		s.feeCap = new(big.Int).Sub(base, big.NewInt(1))
		s.tip = new(big.Int)
	case 4: // intrinsic gas too low
		s.gas = 20_999
	case 5: // tip above the fee cap
		s.typ = 2 // the only type here with a separate tip
		s.tip = new(big.Int).Add(s.feeCap, big.NewInt(1))
	case 6: // more gas than the block has left (retried later)
		s.gas = env.Block.GasLimit + 1
	default: // the poor sender spends what it may not have: valid or not depending on order
		s.from = len(w.eoas) - 1
		s.invalid = false
		s.value = big.NewInt(int64(1e14 + w.rng.IntN(1e14)))
		w.nonce(s)
	}
}

func (w *diffWorld) sign(env *exec.Env, s diffTxSpec) exec.Tx {
	var al types.AccessList
	if s.typ != 0 && w.chance(60) {
		for i := w.rng.IntN(3); i >= 0; i-- {
			t := types.AccessTuple{Address: w.anyAddress(env)}
			for j := w.rng.IntN(3); j > 0; j-- {
				t.StorageKeys = append(t.StorageKeys, common.Hash{31: w.slot()})
			}
			if w.chance(20) {
				t.StorageKeys = append(t.StorageKeys, diffERC20BalanceSlot(w.pick(w.eoas)))
			}
			al = append(al, t)
		}
	}
	intrinsic, err := core.IntrinsicGas(s.data, al, nil, s.to == nil, true, true, true)
	if err != nil {
		panic(err) // only on overflow
	}
	floor, err := core.FloorDataGas(s.data)
	if err != nil {
		panic(err)
	}
	switch {
	case s.tightGas > 0:
		s.gas = max(intrinsic, floor) + uint64(w.rng.IntN(int(s.tightGas)))
	case !s.invalid:
		s.gas = max(s.gas, intrinsic, floor) // an access list costs intrinsic gas
	}
	var inner types.TxData
	switch s.typ {
	case 0:
		price := new(big.Int).Add(env.Block.BaseFee, s.tip)
		if price.Cmp(s.feeCap) > 0 {
			price = s.feeCap
		}
		inner = &types.LegacyTx{Nonce: s.nonce, GasPrice: price, Gas: s.gas, To: s.to, Value: s.value, Data: s.data}
	case 1:
		price := new(big.Int).Add(env.Block.BaseFee, s.tip)
		if price.Cmp(s.feeCap) > 0 {
			price = s.feeCap
		}
		inner = &types.AccessListTx{ChainID: w.chainID, Nonce: s.nonce, GasPrice: price, Gas: s.gas, To: s.to, Value: s.value, Data: s.data, AccessList: al}
	default:
		inner = &types.DynamicFeeTx{ChainID: w.chainID, Nonce: s.nonce, GasTipCap: s.tip, GasFeeCap: s.feeCap, Gas: s.gas, To: s.to, Value: s.value, Data: s.data, AccessList: al}
	}
	tx, err := types.SignNewTx(w.keys[s.from], w.signer, inner)
	if err != nil {
		panic(err) // only for an unsupported type
	}
	return exec.Tx{Tx: tx, Sender: w.eoas[s.from]}
}

// split cuts a block's n transactions into mini-blocks: the bounds of each.
func (w *diffWorld) split(n int) [][2]int {
	m := 1 + w.rng.IntN(w.kn.minis)
	cuts := []int{0}
	for i := 1; i < m; i++ {
		cuts = append(cuts, w.rng.IntN(n+1))
	}
	cuts = append(cuts, n)
	// sorted cut points; equal ones make empty mini-blocks
	for i := 1; i < len(cuts); i++ {
		for j := i; j > 0 && cuts[j] < cuts[j-1]; j-- {
			cuts[j], cuts[j-1] = cuts[j-1], cuts[j]
		}
	}
	var out [][2]int
	for i := 1; i < len(cuts); i++ {
		out = append(out, [2]int{cuts[i-1], cuts[i]})
	}
	return out
}

// --- engines and comparisons ------------------------------------------------------

type diffEngine struct {
	name string
	exec exec.Executor
	par  *exec.Parallel
}

// diffParallelConfigs are the parallel configurations compared with the
// reference: 1 to 8 workers with and without inference, every request forced
// through Block-STM; and the default auto mode (small, predicted-serial and
// measured-slower requests fall back).
var diffParallelConfigs = []exec.ParallelConfig{
	{Mode: exec.ModeParallel, Workers: 1}, {Mode: exec.ModeParallel, Workers: 2}, {Mode: exec.ModeParallel, Workers: 4}, {Mode: exec.ModeParallel, Workers: 8},
	{Mode: exec.ModeParallel, Workers: 1, NoInference: true}, {Mode: exec.ModeParallel, Workers: 2, NoInference: true},
	{Mode: exec.ModeParallel, Workers: 4, NoInference: true}, {Mode: exec.ModeParallel, Workers: 8, NoInference: true},
	{Workers: 2, MinTxs: 1},
}

func diffEngines() []diffEngine {
	var out []diffEngine
	for _, c := range diffParallelConfigs {
		p := exec.NewParallel(c)
		out = append(out, diffEngine{name: fmt.Sprintf("Parallel{Mode:%s Workers:%d MinTxs:%d NoInference:%v}", c.Mode, c.Workers, c.MinTxs, c.NoInference), exec: p, par: p})
	}
	return out
}

// diffOutcome is what happened to one transaction of a block.
type diffOutcome struct {
	rejected   string // the error; empty when included
	retry      bool
	status     uint64
	gasUsed    uint64
	cumulative uint64
	logs       []byte // RLP: address, topics, data of each log
}

func (o diffOutcome) String() string {
	if o.rejected != "" {
		return fmt.Sprintf("rejected (%s)", o.rejected)
	}
	return fmt.Sprintf("status %d, gas %d, cumulative %d, logs %x", o.status, o.gasUsed, o.cumulative, crypto.Keccak256(o.logs))
}

func diffLogsRLP(logs []*types.Log) []byte {
	b, err := rlp.EncodeToBytes(logs)
	if err != nil {
		panic(err) // logs always encode
	}
	return b
}

// diffEncodeReceipt is a receipt's bytes: its RLP (status, gas, logs' address,
// topics and data) and every field of its logs in JSON (positions included).
func diffEncodeReceipt(r *chain.Receipt) []byte {
	b, err := rlp.EncodeToBytes(r)
	if err != nil {
		panic(err)
	}
	j, err := json.Marshal(r.Logs)
	if err != nil {
		panic(err)
	}
	return append(b, j...)
}

// diffCompareResults describes the first difference of got from the reference,
// or returns "". index maps a transaction to its position in the block.
func diffCompareResults(ref, got *exec.Result, index func(*types.Transaction) string) string {
	if len(got.Txs) != len(ref.Txs) {
		return fmt.Sprintf("%d transactions included, want %d", len(got.Txs), len(ref.Txs))
	}
	for i := range ref.Txs {
		if got.Txs[i].Tx.Hash() != ref.Txs[i].Tx.Hash() || got.Txs[i].Sender != ref.Txs[i].Sender {
			return fmt.Sprintf("included transaction %d is %s (%s), want %s", i, index(got.Txs[i].Tx), got.Txs[i].Tx.Hash(), index(ref.Txs[i].Tx))
		}
	}
	if len(got.Receipts) != len(ref.Receipts) {
		return fmt.Sprintf("%d receipts, want %d", len(got.Receipts), len(ref.Receipts))
	}
	for i := range ref.Receipts {
		if g, w := diffEncodeReceipt(got.Receipts[i]), diffEncodeReceipt(ref.Receipts[i]); !bytes.Equal(g, w) {
			return fmt.Sprintf("receipt of %s differs:\n  got  status %d gas %d cumulative %d logs %s\n  want status %d gas %d cumulative %d logs %s",
				index(ref.Txs[i].Tx), got.Receipts[i].Status, got.Receipts[i].GasUsed, got.Receipts[i].CumulativeGasUsed, diffLogsJSON(got.Receipts[i].Logs),
				ref.Receipts[i].Status, ref.Receipts[i].GasUsed, ref.Receipts[i].CumulativeGasUsed, diffLogsJSON(ref.Receipts[i].Logs))
		}
	}
	if len(got.Rejected) != len(ref.Rejected) {
		return fmt.Sprintf("%d rejections, want %d", len(got.Rejected), len(ref.Rejected))
	}
	for i := range ref.Rejected {
		g, w := got.Rejected[i], ref.Rejected[i]
		if g.Tx.Tx.Hash() != w.Tx.Tx.Hash() || g.Err.Error() != w.Err.Error() || g.Retry != w.Retry {
			return fmt.Sprintf("rejection %d: %s %q retry=%v, want %s %q retry=%v", i, index(g.Tx.Tx), g.Err, g.Retry, index(w.Tx.Tx), w.Err, w.Retry)
		}
	}
	if got.GasUsed != ref.GasUsed {
		return fmt.Sprintf("gas used %d, want %d", got.GasUsed, ref.GasUsed)
	}
	if got.Diff == nil {
		return "no state diff"
	}
	gb, err := got.Diff.MarshalBinary()
	if err != nil {
		return fmt.Sprintf("encode diff: %v", err)
	}
	wb, err := ref.Diff.MarshalBinary()
	if err != nil {
		return fmt.Sprintf("encode reference diff: %v", err)
	}
	if !bytes.Equal(gb, wb) {
		return "state diff differs: " + diffDescribeDiffs(got.Diff, ref.Diff)
	}
	return ""
}

// diffLocate re-runs growing prefixes of a mini-block on both engines to name
// the first transaction after which they differ.
func diffLocate(ctx context.Context, e exec.Executor, r state.Reader, env *exec.Env, request func([]exec.Tx) *exec.Request, txs []exec.Tx,
	index func(*types.Transaction) string) string {
	for k := 1; k <= len(txs); k++ {
		ref, err := exec.Sequential{}.Execute(ctx, r, env, request(txs[:k]))
		if err != nil {
			return fmt.Sprintf("locate: sequential on the first %d transactions: %v", k, err)
		}
		got, err := e.Execute(ctx, r, env, request(txs[:k]))
		if err != nil {
			return fmt.Sprintf("locate: the first %d transactions: %v", k, err)
		}
		if d := diffCompareResults(ref, got, index); d != "" {
			return fmt.Sprintf("located: the engines first differ on the mini-block's first %d transactions, the last being %s, hash %s: %s",
				k, index(txs[k-1].Tx), txs[k-1].Tx.Hash(), d)
		}
	}
	return "locate: no prefix of the mini-block differs (the difference did not reproduce)"
}

func diffLogsJSON(logs []*types.Log) string {
	j, _ := json.Marshal(logs)
	return string(j)
}

// diffDescribeDiffs names the first account where two state diffs differ.
func diffDescribeDiffs(got, want *chain.StateDiff) string {
	byAddr := func(d *chain.StateDiff) map[common.Address]*chain.AccountDiff {
		m := make(map[common.Address]*chain.AccountDiff, len(d.Accounts))
		for i := range d.Accounts {
			m[d.Accounts[i].Address] = &d.Accounts[i]
		}
		return m
	}
	g, w := byAddr(got), byAddr(want)
	show := func(a *chain.AccountDiff) string {
		if a == nil {
			return "absent"
		}
		var slots []string
		for _, s := range a.Storage {
			slots = append(slots, fmt.Sprintf("%#x=%#x", s.Key.Big(), s.Value.Big()))
		}
		return fmt.Sprintf("deleted=%v storageReset=%v nonce=%d balance=%s codeHash=%x code=%d bytes (set=%v) storage=[%s]",
			a.Deleted, a.StorageReset, a.Nonce, a.Balance.Dec(), a.CodeHash, len(a.Code), a.Code != nil, strings.Join(slots, " "))
	}
	for _, d := range []*chain.StateDiff{want, got} {
		for i := range d.Accounts {
			addr := d.Accounts[i].Address
			ga, wa := g[addr], w[addr]
			if ga == nil || wa == nil {
				return fmt.Sprintf("account %s:\n  got  %s\n  want %s", addr, show(ga), show(wa))
			}
			ge, _ := (&chain.StateDiff{Accounts: []chain.AccountDiff{*ga}}).MarshalBinary()
			we, _ := (&chain.StateDiff{Accounts: []chain.AccountDiff{*wa}}).MarshalBinary()
			if !bytes.Equal(ge, we) {
				return fmt.Sprintf("account %s:\n  got  %s\n  want %s", addr, show(ga), show(wa))
			}
		}
	}
	return "same accounts, different encoding (order?)"
}

// --- go-ethereum's side -------------------------------------------------------------

// diffGeth executes blocks with go-ethereum's state.StateDB over a hash-scheme
// trie database in memory.
type diffGeth struct {
	db   gstate.Database
	sdb  *gstate.StateDB
	root common.Hash
}

func newDiffGeth(alloc types.GenesisAlloc) (*diffGeth, error) {
	tdb := triedb.NewDatabase(rawdb.NewMemoryDatabase(), &triedb.Config{HashDB: hashdb.Defaults})
	db := gstate.NewDatabase(tdb, nil)
	sdb, err := gstate.New(types.EmptyRootHash, db)
	if err != nil {
		return nil, err
	}
	for addr, a := range alloc {
		sdb.SetCode(addr, a.Code, tracing.CodeChangeUnspecified)
		sdb.SetNonce(addr, a.Nonce, tracing.NonceChangeUnspecified)
		sdb.SetBalance(addr, uint256.MustFromBig(a.Balance), tracing.BalanceChangeUnspecified)
		for k, v := range a.Storage {
			sdb.SetState(addr, k, v)
		}
	}
	root, err := sdb.Commit(0, false, false)
	if err != nil {
		return nil, err
	}
	g := &diffGeth{db: db, root: root}
	g.sdb, err = gstate.New(root, db)
	return g, err
}

// block applies a block's transactions as go-ethereum's block processing does,
// except that an invalid transaction is left out (state and gas pool restored)
// instead of invalidating the block, as Kestrel's executor does.
func (g *diffGeth) block(env *exec.Env, parent common.Hash, txs []exec.Tx) ([]diffOutcome, common.Hash, error) {
	evm := vm.NewEVM(exec.BlockContext(env), g.sdb, env.Config, vm.Config{})
	core.ProcessBeaconBlockRoot(common.Hash{}, evm)
	core.ProcessParentBlockHash(parent, evm)
	b := env.Block
	header := &types.Header{Number: new(big.Int).SetUint64(b.Number), Time: b.Time, BaseFee: b.BaseFee, GasLimit: b.GasLimit,
		Coinbase: b.Coinbase, MixDigest: b.Random, Difficulty: new(big.Int)}
	gp := core.NewGasPool(b.GasLimit)
	outs := make([]diffOutcome, len(txs))
	included := 0
	for i, t := range txs {
		g.sdb.SetTxContext(t.Tx.Hash(), included)
		snap, gas := g.sdb.Snapshot(), gp.Snapshot()
		receipt, err := core.ApplyTransaction(evm, gp, g.sdb, header, t.Tx)
		if err != nil {
			g.sdb.RevertToSnapshot(snap)
			gp.Set(gas)
			outs[i] = diffOutcome{rejected: err.Error()}
			continue
		}
		included++
		outs[i] = diffOutcome{status: receipt.Status, gasUsed: receipt.GasUsed, cumulative: receipt.CumulativeGasUsed, logs: diffLogsRLP(receipt.Logs)}
	}
	root, err := g.sdb.Commit(b.Number, true, false)
	if err != nil {
		return nil, common.Hash{}, err
	}
	g.root = root
	g.sdb, err = gstate.New(root, g.db)
	return outs, root, err
}

// diffStateMismatch names the accounts whose state differs between Kestrel and
// go-ethereum after a block: every account the scenario knows and every one
// the block's diff touched, with the slots the diff wrote, and the block's
// transactions that name the account (as sender or recipient).
func diffStateMismatch(w *diffWorld, k state.Reader, g *gstate.StateDB, merged *chain.StateDiff, txs []exec.Tx) string {
	slots := make(map[common.Address][]common.Hash)
	var addrs []common.Address
	for _, a := range merged.Accounts {
		addrs = append(addrs, a.Address)
		for _, sl := range a.Storage {
			slots[a.Address] = append(slots[a.Address], sl.Key)
		}
	}
	for _, list := range [][]common.Address{w.eoas, w.chaos, w.tokens, w.empties, w.fresh, w.create2, w.precomps, w.coinbases,
		{w.pool, params.HistoryStorageAddress, params.BeaconRootsAddress, params.SystemAddress}} {
		addrs = append(addrs, list...)
	}
	var out []string
	seen := make(map[common.Address]bool)
	for _, addr := range addrs {
		if seen[addr] {
			continue
		}
		seen[addr] = true
		acct, ok := k.Account(addr)
		kv := fmt.Sprintf("exists=%v nonce=%d balance=%s codeHash=%x hasStorage=%v", ok, acct.Nonce, acct.Balance.Dec(), acct.CodeHash, k.HasStorage(addr))
		gcode := g.GetCodeHash(addr)
		if gcode == (common.Hash{}) && g.Exist(addr) {
			gcode = types.EmptyCodeHash
		}
		gv := fmt.Sprintf("exists=%v nonce=%d balance=%s codeHash=%x hasStorage=%v", g.Exist(addr), g.GetNonce(addr), g.GetBalance(addr).Dec(), gcode,
			g.GetStorageRoot(addr) != types.EmptyRootHash && g.GetStorageRoot(addr) != common.Hash{})
		if kv != gv {
			out = append(out, fmt.Sprintf("account %s:\n  kestrel      %s\n  go-ethereum  %s", addr, kv, gv))
		}
		for _, key := range slots[addr] {
			if kval, gval := k.Storage(addr, key), g.GetState(addr, key); kval != gval {
				out = append(out, fmt.Sprintf("account %s slot %x: kestrel %x, go-ethereum %x", addr, key, kval, gval))
			}
		}
		if len(out) > 0 && len(out[len(out)-1]) > 0 && strings.HasPrefix(out[len(out)-1], "account "+addr.Hex()) {
			var named []string
			for i, t := range txs {
				if t.Sender == addr || (t.Tx.To() != nil && *t.Tx.To() == addr) {
					named = append(named, strconv.Itoa(i))
				}
			}
			out = append(out, fmt.Sprintf("  transactions from or to %s: %v", addr, named))
		}
	}
	if len(out) == 0 {
		return "no difference found in the accounts the scenario knows (look at storage the diff did not name)"
	}
	return strings.Join(out, "\n")
}

// --- scenarios ---------------------------------------------------------------------

// diffStats counts what a run covered, so that the test can check that the
// generator exercises what it claims.
type diffStats struct {
	scenarios, blocks, minis, txs int
	included, failed, logs        int
	rejected                      map[string]int // by error class
	types                         [3]int         // included, by transaction type
	deleted, resets, created      int            // diff entries
	clearedSlots                  int
	poolLogs, tokenLogs           int
	coinbaseSenderBlocks          int
	lateParent                    int // blocks whose EIP-2935 call ran after the first mini-block
	parallel                      exec.ParallelStats
}

func (s *diffStats) add(o diffStats) {
	s.scenarios += o.scenarios
	s.blocks += o.blocks
	s.minis += o.minis
	s.txs += o.txs
	s.included += o.included
	s.failed += o.failed
	s.logs += o.logs
	if s.rejected == nil {
		s.rejected = make(map[string]int)
	}
	for k, v := range o.rejected {
		s.rejected[k] += v
	}
	for i := range s.types {
		s.types[i] += o.types[i]
	}
	s.deleted += o.deleted
	s.resets += o.resets
	s.created += o.created
	s.clearedSlots += o.clearedSlots
	s.poolLogs += o.poolLogs
	s.tokenLogs += o.tokenLogs
	s.coinbaseSenderBlocks += o.coinbaseSenderBlocks
	s.lateParent += o.lateParent
	diffAddCounters(&s.parallel, o.parallel)
}

// diffAddCounters adds every counter of b to a (whatever counters the engine
// reports).
func diffAddCounters(a *exec.ParallelStats, b exec.ParallelStats) {
	av, bv := reflect.ValueOf(a).Elem(), reflect.ValueOf(b)
	for i := 0; i < av.NumField(); i++ {
		if f := av.Field(i); f.Kind() == reflect.Uint64 && f.CanSet() {
			f.SetUint(f.Uint() + bv.Field(i).Uint())
		}
	}
}

// diffErrClass is the rejection's class: its error text up to the first colon.
func diffErrClass(err string) string {
	if i := strings.IndexByte(err, ':'); i >= 0 {
		return err[:i]
	}
	return err
}

// diffScenarioID names a scenario: the generator's seed, its knobs, and the
// caps on blocks and transactions per block the run put on the knobs.
type diffScenarioID struct {
	seed             uint64
	knobs            uint32
	maxBlocks, maxTx int
}

func (id diffScenarioID) String() string {
	return fmt.Sprintf("%d:%#x:%d:%d", id.seed, id.knobs, id.maxBlocks, id.maxTx)
}

func parseDiffScenarioID(s string) (diffScenarioID, error) {
	f := strings.Split(s, ":")
	if len(f) != 4 {
		return diffScenarioID{}, fmt.Errorf("%q: want <seed>:<knobs>:<blocks>:<txs>", s)
	}
	var n [4]uint64
	for i := range f {
		v, err := strconv.ParseUint(f[i], 0, 64)
		if err != nil || (i == 1 && v > math.MaxUint32) || (i > 1 && v > 1<<20) {
			return diffScenarioID{}, fmt.Errorf("%q: field %d: want <seed>:<knobs>:<blocks>:<txs>", s, i+1)
		}
		n[i] = v
	}
	return diffScenarioID{seed: n[0], knobs: uint32(n[1]), maxBlocks: int(n[2]), maxTx: int(n[3])}, nil
}

// diffScenario runs one scenario and fails t on any difference.
func diffScenario(t testing.TB, id diffScenarioID) diffStats {
	t.Helper()
	seed := id.seed
	kn := diffDecodeKnobs(id.knobs, id.maxBlocks, id.maxTx)
	name := fmt.Sprintf("scenario %s (seed:knobs:blocks:txs; replay: KESTREL_DIFF_SCENARIO=%s go test -run TestParallelDifferential ./core/exec/)", id, id)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s: %s", name, fmt.Sprintf(format, args...))
	}
	w := newDiffWorld(seed, kn)
	stats := diffStats{scenarios: 1, rejected: make(map[string]int)}

	st, pre, err := statetest.PreState(w.alloc)
	if err != nil {
		fail("pre-state: %v", err)
	}
	merkle := state.NewMerkle(2)
	root, err := merkle.Apply(0, pre)
	if err != nil {
		fail("pre-state tries: %v", err)
	}
	geth, err := newDiffGeth(w.alloc)
	if err != nil {
		fail("go-ethereum pre-state: %v", err)
	}
	if root != geth.root {
		fail("pre-state root %x, go-ethereum %x", root, geth.root)
	}
	engines := diffEngines()
	ctx := context.Background()

	for number := uint64(1); number <= uint64(kn.blocks); number++ {
		env := w.env(number)
		txs := w.block(env, st.Head())
		minis := w.split(len(txs))
		parent := w.blockHash(number - 1)
		// The EIP-2935 call runs in the first mini-block, or later (the
		// parent's hash arrives late) with the slot lazy until then.
		parentAt := 0
		if len(minis) > 1 && w.chance(40) {
			parentAt = 1 + w.rng.IntN(len(minis)-1)
			stats.lateParent++
		}
		var lazyKey common.Hash
		new(big.Int).SetUint64((number - 1) % params.HistoryServeWindow).FillBytes(lazyKey[:])
		lazy := &state.LazySlot{Addr: params.HistoryStorageAddress, Key: lazyKey, Get: func() common.Hash { return parent }}
		pos := make(map[*types.Transaction]int, len(txs))
		for i, tx := range txs {
			pos[tx.Tx] = i
		}
		index := func(tx *types.Transaction) string {
			i, ok := pos[tx]
			if !ok {
				return "a transaction not in the block"
			}
			return fmt.Sprintf("tx %d (nonce %d from %s, %d bytes of data)", i, tx.Nonce(), txs[i].Sender, len(tx.Data()))
		}
		var pinned *state.View
		if kn.pin {
			pinned = st.View()
		}
		// The tries take the mini-block diffs as they come (the sealer's
		// way) on even blocks, and their merge at the end (recovery's and
		// Verify's way) on odd ones.
		var builder *state.Builder
		if number%2 == 0 {
			if builder, err = merkle.Begin(); err != nil {
				fail("block %d: open tries: %v", number, err)
			}
		}
		var diffs []*chain.StateDiff
		outs := make([]diffOutcome, len(txs))
		var gasUsed uint64
		for m, bounds := range minis {
			mtxs := txs[bounds[0]:bounds[1]]
			request := func(txs []exec.Tx) *exec.Request {
				req := &exec.Request{Txs: append([]exec.Tx(nil), txs...), GasUsed: gasUsed, BeaconRoot: m == 0}
				switch {
				case m == parentAt:
					h := parent
					req.ParentHash = &h
				case m < parentAt:
					req.Lazy = lazy
				}
				return req
			}
			var reader state.Reader = st.Head()
			var view *state.View
			if kn.pin {
				view = st.View()
				reader = view
			}
			ref, err := exec.Sequential{}.Execute(ctx, reader, env, request(mtxs))
			if err != nil {
				fail("block %d mini-block %d: sequential: %v", number, m, err)
			}
			if err := ref.Diff.Validate(); err != nil {
				fail("block %d mini-block %d: sequential diff: %v", number, m, err)
			}
			for _, e := range engines {
				got, err := e.exec.Execute(ctx, reader, env, request(mtxs))
				if err != nil {
					fail("block %d mini-block %d (txs %d..%d): %s: %v", number, m, bounds[0], bounds[1], e.name, err)
				}
				if d := diffCompareResults(ref, got, index); d != "" {
					fail("block %d mini-block %d (txs %d..%d of %d): %s differs from Sequential: %s\n%s", number, m, bounds[0], bounds[1], len(txs), e.name, d,
						diffLocate(ctx, e.exec, reader, env, request, mtxs, index))
				}
			}
			if view != nil {
				view.Release()
			}
			st.Commit(st.HeadIndex()+1, ref.Diff)
			diffs = append(diffs, ref.Diff)
			if builder != nil {
				if err := builder.Add(ref.Diff); err != nil {
					fail("block %d mini-block %d: tries: %v", number, m, err)
				}
			}
			gasUsed = ref.GasUsed
			stats.minis++
			for i, t := range ref.Txs {
				r := ref.Receipts[i]
				outs[pos[t.Tx]] = diffOutcome{status: r.Status, gasUsed: r.GasUsed, cumulative: r.CumulativeGasUsed, logs: diffLogsRLP(r.Logs)}
				stats.included++
				stats.types[t.Tx.Type()]++
				if r.Status != types.ReceiptStatusSuccessful {
					stats.failed++
				}
				stats.logs += len(r.Logs)
				for _, l := range r.Logs {
					if len(l.Topics) > 0 && l.Topics[0] == (common.Hash{31: diffPoolTopic}) {
						stats.poolLogs++
					}
					if len(l.Topics) > 0 && l.Topics[0] == contracts.ERC20TransferTopic {
						stats.tokenLogs++
					}
				}
			}
			for _, r := range ref.Rejected {
				outs[pos[r.Tx.Tx]] = diffOutcome{rejected: r.Err.Error(), retry: r.Retry}
				stats.rejected[diffErrClass(r.Err.Error())]++
			}
			for _, a := range ref.Diff.Accounts {
				if a.Deleted {
					stats.deleted++
				}
				if a.StorageReset {
					stats.resets++
				}
				if a.Code != nil {
					stats.created++
				}
				for _, s := range a.Storage {
					if s.Value == (common.Hash{}) {
						stats.clearedSlots++
					}
				}
			}
		}
		if pinned != nil {
			pinned.Release()
		}
		merged := chain.MergeDiffs(diffs)
		if err := merged.Validate(); err != nil {
			fail("block %d: merged diff: %v", number, err)
		}
		if builder != nil {
			root, err = builder.Commit(number)
		} else {
			root, err = merkle.Apply(number, merged)
		}
		if err != nil {
			fail("block %d: tries: %v", number, err)
		}
		stats.blocks++
		stats.txs += len(txs)
		for _, t := range txs {
			if t.Sender == env.Block.Coinbase {
				stats.coinbaseSenderBlocks++
				break
			}
		}

		gouts, groot, err := geth.block(env, parent, txs)
		if err != nil {
			fail("block %d: go-ethereum: %v", number, err)
		}
		for i := range txs {
			k, g := outs[i], gouts[i]
			if k.rejected != g.rejected || k.status != g.status || k.gasUsed != g.gasUsed || k.cumulative != g.cumulative || !bytes.Equal(k.logs, g.logs) {
				fail("block %d %s, hash %s: Kestrel Sequential %v, go-ethereum %v", number, index(txs[i].Tx), txs[i].Tx.Hash(), k, g)
			}
		}
		if root != groot {
			fail("block %d: state root %x, go-ethereum %x (coinbase %s, base fee %s, %d txs in %d mini-blocks): %s", number, root, groot,
				env.Block.Coinbase, env.Block.BaseFee, len(txs), len(minis), diffStateMismatch(w, st.Head(), geth.sdb, merged, txs))
		}
	}
	for _, e := range engines {
		diffAddCounters(&stats.parallel, e.par.Stats())
	}
	return stats
}

// TestParallelDifferential compares Sequential, Parallel and go-ethereum on
// random blocks: a few seeds in the default run, many with
// KESTREL_STATE_TESTS=full, one with KESTREL_DIFF_SCENARIO=<seed>:<knobs>:<blocks>:<txs>.
func TestParallelDifferential(t *testing.T) {
	start := time.Now()
	var runs []diffScenarioID
	if s := os.Getenv("KESTREL_DIFF_SCENARIO"); s != "" {
		id, err := parseDiffScenarioID(s)
		if err != nil {
			t.Fatalf("KESTREL_DIFF_SCENARIO: %v", err)
		}
		runs = append(runs, id)
	} else {
		n, maxBlocks, maxTxs := 24, 3, 40
		if statetestMode() == "full" {
			n, maxBlocks, maxTxs = 300, 4, 66
		}
		for i := 0; i < n; i++ {
			seed := uint64(i + 1)
			// Knobs from the seed, with every coinbase mode and both forks in the short run.
			k := uint32(seed*0x9e3779b9) &^ (7<<15 | 1<<11)
			k |= uint32(i%5)<<15 | uint32(i/5%2)<<11
			runs = append(runs, diffScenarioID{seed: seed, knobs: k, maxBlocks: maxBlocks, maxTx: maxTxs})
		}
	}
	var total diffStats
	for _, id := range runs {
		total.add(diffScenario(t, id))
	}
	t.Logf("%s run: %d scenarios, %d blocks, %d mini-blocks, %d txs (%d included, %d failed, %d logs), rejected %v, "+
		"included by type %v, diff entries: %d deleted, %d storage resets, %d with new code, %d cleared slots; %d blocks where the fee recipient sends, %d with a late EIP-2935 call; "+
		"parallel: %+v; %s", statetestMode(), total.scenarios, total.blocks, total.minis, total.txs, total.included, total.failed, total.logs,
		total.rejected, total.types, total.deleted, total.resets, total.created, total.clearedSlots, total.coinbaseSenderBlocks, total.lateParent, total.parallel,
		time.Since(start).Round(time.Millisecond))
	if os.Getenv("KESTREL_DIFF_SCENARIO") != "" {
		return
	}
	// The generator must produce what the comparisons are meant to cover.
	checks := []struct {
		what string
		n    int
	}{
		{"included legacy transactions", total.types[types.LegacyTxType]},
		{"included EIP-2930 transactions", total.types[types.AccessListTxType]},
		{"included EIP-1559 transactions", total.types[types.DynamicFeeTxType]},
		{"failed transactions (revert, out of gas)", total.failed},
		{"pool swaps", total.poolLogs},
		{"ERC-20 transfers", total.tokenLogs},
		{"deleted accounts", total.deleted},
		{"storage resets", total.resets},
		{"new contracts", total.created},
		{"cleared slots", total.clearedSlots},
		{"blocks where the fee recipient sends", total.coinbaseSenderBlocks},
		{"blocks with a late EIP-2935 call (lazy slot)", total.lateParent},
		{"rejections: nonce too low", total.rejected[diffErrClass(core.ErrNonceTooLow.Error())]},
		{"rejections: nonce too high", total.rejected[diffErrClass(core.ErrNonceTooHigh.Error())]},
		{"rejections: insufficient funds", total.rejected[diffErrClass(core.ErrInsufficientFunds.Error())]},
		{"rejections: fee cap below base fee", total.rejected[diffErrClass(core.ErrFeeCapTooLow.Error())]},
		{"rejections: intrinsic gas", total.rejected[diffErrClass(core.ErrIntrinsicGas.Error())]},
		{"rejections: tip above fee cap", total.rejected[diffErrClass(core.ErrTipAboveFeeCap.Error())]},
		{"rejections: block gas limit", total.rejected[diffErrClass(core.ErrGasLimitReached.Error())]},
	}
	for _, c := range checks {
		if c.n == 0 {
			t.Errorf("the generator produced no %s", c.what)
		}
	}
}

// FuzzParallelBlocks runs one or two small random blocks, drawn from the
// fuzzer's seed and knobs, through Sequential, Parallel and go-ethereum.
func FuzzParallelBlocks(f *testing.F) {
	for i, k := range []uint32{0, 0x1234, 0x8c9f1, 0x3ffff, 0xfedcba98, 0x18000, 0x41000, 0x7001} {
		f.Add(uint64(i+100), k)
	}
	f.Fuzz(func(t *testing.T, seed uint64, knobs uint32) {
		diffScenario(t, diffScenarioID{seed: seed, knobs: knobs, maxBlocks: 2, maxTx: 16})
	})
}

// TestChaosContract checks the building blocks the generator relies on: that
// the hand-assembled interpreter and pool do what diffProg and diffSwapData
// say, through the reference executor.
func TestChaosContract(t *testing.T) {
	w := newDiffWorld(7, diffDecodeKnobs(0, 1, 10))
	st, _, err := statetest.PreState(w.alloc)
	if err != nil {
		t.Fatal(err)
	}
	env := w.env(1)
	env.Block.BaseFee = big.NewInt(1)
	env.Block.GasLimit = 30_000_000
	from, c0, c1 := w.eoas[0], w.chaos[0], w.chaos[1]
	nonce, _ := st.Head().Account(from)
	n := nonce.Nonce
	run := func(to *common.Address, value int64, data []byte) *chain.Receipt {
		t.Helper()
		tx, err := types.SignNewTx(w.keys[0], w.signer, &types.DynamicFeeTx{ChainID: w.chainID, Nonce: n, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(10),
			Gas: 5_000_000, To: to, Value: big.NewInt(value), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		res, err := exec.Sequential{}.Execute(context.Background(), st.Head(), env, &exec.Request{Txs: []exec.Tx{{Tx: tx, Sender: from}}})
		if err != nil || len(res.Receipts) != 1 {
			t.Fatalf("execute: %v, %+v", err, res)
		}
		n++
		st.Commit(st.HeadIndex()+1, res.Diff)
		return res.Receipts[0]
	}
	slot := func(addr common.Address, s byte) common.Hash { return st.Head().Storage(addr, common.Hash{31: s}) }
	exists := func(addr common.Address) bool { _, ok := st.Head().Account(addr); return ok }

	// Storage, transient storage, logs, balances, caller.
	p := diffProg{}.sstore(0x30, 9).inc(0x30).tstore(1, 0x44).tload(1, 0x31).log(0x77, 0x30).coinbaseBalance(0x32).
		balance(c1, 0x33).selfBalance(0x34).caller(0x35).copySlot(0x30, 0x36).blockHash(0x37).loop(10)
	r := run(&c0, 0, p)
	if r.Status != 1 || slot(c0, 0x30) != (common.Hash{31: 10}) || slot(c0, 0x31) != (common.Hash{31: 0x44}) || slot(c0, 0x36) != (common.Hash{31: 10}) {
		t.Fatalf("storage program: status %d, slots %x %x %x", r.Status, slot(c0, 0x30), slot(c0, 0x31), slot(c0, 0x36))
	}
	if len(r.Logs) != 1 || r.Logs[0].Topics[0] != (common.Hash{31: 0x77}) || common.BytesToHash(r.Logs[0].Data) != (common.Hash{31: 10}) {
		t.Fatalf("log: %s", diffLogsJSON(r.Logs))
	}
	if slot(c0, 0x33) != common.BigToHash(diffEther) || common.BytesToAddress(slot(c0, 0x35).Bytes()) != from || slot(c0, 0x37) != w.blockHash(0) {
		t.Fatalf("balance %x, caller %x, blockhash %x", slot(c0, 0x33), slot(c0, 0x35), slot(c0, 0x37))
	}

	// Nested calls: a CALL that writes c1; a STATICCALL that tries to write
	// (fails, result 0); a DELEGATECALL that writes c0; a reverting frame.
	p = diffProg{}.call(chaosKindCall, c1, 5, 0xffffff, 0x40, diffProg{}.sstore(0x41, 1)).
		call(chaosKindStatic, c1, 0, 0xffffff, 0x42, diffProg{}.sstore(0x43, 1)).
		call(chaosKindDelegate, c1, 0, 0xffffff, 0x44, diffProg{}.sstore(0x45, 1)).
		call(chaosKindCall, c1, 0, 0xffffff, 0x46, diffProg{}.sstore(0x47, 1).revert())
	if r = run(&c0, 5, p); r.Status != 1 {
		t.Fatal("call program failed")
	}
	if slot(c0, 0x40) != (common.Hash{31: 1}) || slot(c1, 0x41) != (common.Hash{31: 1}) || slot(c0, 0x42) != (common.Hash{}) || slot(c1, 0x43) != (common.Hash{}) ||
		slot(c0, 0x44) != (common.Hash{31: 1}) || slot(c0, 0x45) != (common.Hash{31: 1}) || slot(c0, 0x46) != (common.Hash{}) || slot(c1, 0x47) != (common.Hash{}) {
		t.Fatal("nested call results are not what the program says")
	}

	// CREATE2 of a clone, call into it, destroy it in the same transaction.
	clone := diffChaosInit(initClone, common.Address{})
	at := crypto.CreateAddress2(c0, common.Hash{31: diffSaltA}, crypto.Keccak256(clone))
	beneficiary := w.fresh[2]
	p = diffProg{}.create2(100, diffSaltA, 0x50, clone).call(chaosCallLast|chaosKindCall, common.Address{}, 0, 0xffffff, 0x51, diffProg{}.sstore(1, 1).selfDestruct(beneficiary))
	if r = run(&c0, 100, p); r.Status != 1 || common.BytesToAddress(slot(c0, 0x50).Bytes()) != at || slot(c0, 0x51) != (common.Hash{31: 1}) {
		t.Fatalf("create2 and destroy: status %d, created %x", r.Status, slot(c0, 0x50))
	}
	if exists(at) {
		t.Fatal("contract destroyed in its creating transaction still exists")
	}
	if b, _ := st.Head().Account(beneficiary); b.Balance.Uint64() != 100 {
		t.Fatalf("beneficiary got %s", b.Balance.Dec())
	}
	// CREATE2 twice: the second collides. Then call the clone.
	p = diffProg{}.create2(0, diffSaltA, 0x52, clone).create2(0, diffSaltA, 0x53, clone).call(chaosKindCall, at, 0, 0xffffff, 0x54, diffProg{}.sstore(2, 2))
	if r = run(&c0, 0, p); r.Status != 1 || common.BytesToAddress(slot(c0, 0x52).Bytes()) != at || slot(c0, 0x53) != (common.Hash{}) || slot(at, 2) != (common.Hash{31: 2}) {
		t.Fatalf("create2 collision: status %d, %x %x", r.Status, slot(c0, 0x52), slot(c0, 0x53))
	}
	// CREATE2 onto an address with storage only (EIP-7610) fails.
	p = diffProg{}.create2(0, diffSaltCollide, 0x55, clone)
	if r = run(&c0, 0, p); r.Status != 1 || slot(c0, 0x55) != (common.Hash{}) {
		t.Fatalf("EIP-7610 collision: status %d, created %x", r.Status, slot(c0, 0x55))
	}
	// A reverting constructor, a self-destructing one, an empty one, an 0xEF
	// one (last: a failure other than a revert takes the gas it was given).
	p = diffProg{}.create(0, 0x56, diffChaosInit(initRevert, common.Address{})).create(7, 0x58, diffChaosInit(initSelfDestruct, beneficiary)).
		create(0, 0x59, diffChaosInit(initEmpty, common.Address{})).create(0, 0x57, diffChaosInit(initBadCode, common.Address{}))
	if r = run(&c0, 7, p); r.Status != 1 || slot(c0, 0x56) != (common.Hash{}) || slot(c0, 0x57) != (common.Hash{}) || slot(c0, 0x58) == (common.Hash{}) || slot(c0, 0x59) == (common.Hash{}) {
		t.Fatalf("constructors: status %d, %x %x %x %x", r.Status, slot(c0, 0x56), slot(c0, 0x57), slot(c0, 0x58), slot(c0, 0x59))
	}
	if exists(common.BytesToAddress(slot(c0, 0x58).Bytes())) {
		t.Fatal("contract self-destructed in its constructor still exists")
	}
	// A pre-existing contract's SELFDESTRUCT moves its balance and keeps it (EIP-6780).
	before, _ := st.Head().Account(c1)
	if r = run(&c1, 0, diffProg{}.selfDestruct(beneficiary)); r.Status != 1 {
		t.Fatal("selfdestruct failed")
	}
	after, ok := st.Head().Account(c1)
	if !ok || after.Balance.Sign() != 0 || after.CodeHash != crypto.Keccak256Hash(diffChaosRuntime) || before.Balance.Sign() == 0 {
		t.Fatalf("pre-existing selfdestruct: exists %v, balance %s", ok, after.Balance.Dec())
	}
	// Revert and INVALID fail the transaction.
	if r = run(&c0, 0, diffProg{}.sstore(0x60, 1).revert()); r.Status != 0 || slot(c0, 0x60) != (common.Hash{}) {
		t.Fatal("revert did not fail the transaction")
	}
	if r = run(&c0, 0, diffProg{}.invalid()); r.Status != 0 || r.GasUsed != 5_000_000 {
		t.Fatalf("INVALID: status %d gas %d", r.Status, r.GasUsed)
	}
	// Pool: a swap moves the reserves and credits the caller; a swap below
	// its minimum output reverts.
	pool := w.pool
	if r = run(&pool, 0, diffSwapData(0, 1e15, 0)); r.Status != 1 || len(r.Logs) != 1 {
		t.Fatalf("swap: status %d", r.Status)
	}
	out := new(big.Int).Div(new(big.Int).Mul(diffEther, big.NewInt(1e15)), new(big.Int).Add(diffEther, big.NewInt(1e15)))
	if slot(pool, 0).Big().Cmp(new(big.Int).Add(diffEther, big.NewInt(1e15))) != 0 || slot(pool, 1).Big().Cmp(new(big.Int).Sub(diffEther, out)) != 0 ||
		st.Head().Storage(pool, common.BytesToHash(from[:])).Big().Cmp(out) != 0 {
		t.Fatalf("swap reserves %x %x", slot(pool, 0), slot(pool, 1))
	}
	if r = run(&pool, 0, diffSwapData(0, 1e15, 1e15)); r.Status != 0 {
		t.Fatal("swap below its minimum output did not revert")
	}
}
