package exec_test

// Differential sequences: the state-test fixtures hold one transaction each, so
// they never exercise what lives between transactions (pending storage, accounts
// destroyed and re-created earlier in the block, the flat state's layers, the
// trie reader). This test replays every test's transactions several times in a
// row (re-signed with the sender's current nonce) on go-ethereum's own
// state.StateDB and on Kestrel's executor (exec.ApplyTx) in several ways, and
// compares every outcome and state root:
//
//   - block:      one StateDB for the whole sequence (one mini-block);
//   - miniblocks: one StateDB per transaction over the flat state's newest view,
//     diffs committed as layers (older views stay pinned part of the time);
//   - trie:       one StateDB per transaction over the Merkle tries' TrieReader;
//   - merged:     one mini-block per transaction, the tries updated per block of
//     three mini-blocks with chain.MergeDiffs.

import (
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/tests"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/exec"
	"github.com/kestrel-l2/kestrel/core/state"
)

const (
	// statetestSeqRepeat is how many times a test's transactions run in a row.
	statetestSeqRepeat = 3
	// statetestSeqMax caps a sequence's length.
	statetestSeqMax = 48
	// statetestSeqHeavyGas: a test whose transactions use more gas than this in
	// one round runs one round only.
	statetestSeqHeavyGas = 5_000_000
)

// statetestOutcome is what one transaction of a sequence did.
type statetestOutcome struct {
	err     string // empty when the transaction was applied
	failed  bool
	gasUsed uint64
	logs    common.Hash
	root    common.Hash // state root after the transaction
}

func (o statetestOutcome) String() string {
	if o.err != "" {
		return fmt.Sprintf("rejected (%s), root %x", o.err, o.root)
	}
	return fmt.Sprintf("failed=%v gas=%d logs=%x root %x", o.failed, o.gasUsed, o.logs, o.root)
}

func TestStateTestSequences(t *testing.T) {
	start := time.Now()
	var (
		mu       sync.Mutex
		ran      int
		txs      int
		failures []string
	)
	selected, files := statetestForEach(t, func(path, name, fork string, tc *statetestCase, posts []*statetestPost) {
		n, errs := statetestSequence(fork, tc, posts)
		mu.Lock()
		defer mu.Unlock()
		if n > 0 {
			ran++
			txs += n
		}
		for _, err := range errs {
			failures = append(failures, fmt.Sprintf("%s :: %s [%s]: %v", path, name, fork, err))
		}
	})
	t.Logf("%s run: %d of %d fixture files, %d sequences, %d transactions per mode, %d failures, %s",
		statetestMode(), selected, files, ran, txs, len(failures), time.Since(start).Round(time.Millisecond))
	if ran == 0 {
		t.Fatal("no sequence ran")
	}
	statetestReport(t, failures)
}

// statetestSequence runs one test's sequence in every mode and returns its
// length and the mismatches.
func statetestSequence(fork string, tc *statetestCase, posts []*statetestPost) (n int, errs []error) {
	defer func() {
		if r := recover(); r != nil {
			errs = append(errs, fmt.Errorf("panic: %v", r))
		}
	}()
	config := tests.Forks[fork]
	signer := types.LatestSigner(config)
	key, err := crypto.ToECDSA(tc.Tx.PrivateKey)
	if err != nil {
		return 0, nil
	}
	sender := crypto.PubkeyToAddress(key.PublicKey)
	var templates []*types.Transaction
	for _, p := range posts {
		if len(p.TxBytes) == 0 {
			continue
		}
		var tx types.Transaction
		if tx.UnmarshalBinary(p.TxBytes) != nil {
			continue
		}
		if from, err := types.Sender(signer, &tx); err != nil || from != sender {
			continue
		}
		templates = append(templates, &tx)
	}
	if len(templates) == 0 {
		return 0, nil
	}
	var seq []*types.Transaction
	for r := 0; r < statetestSeqRepeat && len(seq) < statetestSeqMax; r++ {
		for _, tx := range templates {
			if len(seq) < statetestSeqMax {
				seq = append(seq, tx)
			}
		}
	}
	blk := statetestBlockEnv(config, &tc.Env)
	preNonce := tc.Pre[sender].Nonce

	// Reference: go-ethereum's StateDB, with the state root after every
	// transaction. It also picks the nonce each re-signed transaction carries.
	gst := tests.MakePreState(rawdb.NewMemoryDatabase(), tc.Pre, false, rawdb.HashScheme)
	defer gst.Close()
	gdb := gst.StateDB
	gevm := vm.NewEVM(blk.ctx, gdb, config, vm.Config{})
	signed := make([]*types.Transaction, len(seq))
	var roundGas uint64
	want := make([]statetestOutcome, len(seq))
	for i, tmpl := range seq {
		nonce := tmpl.Nonce()
		if nonce == preNonce {
			// Valid at the start: keep it valid. Other nonces stay as the test
			// set them (too high, too low, the maximum).
			nonce = gdb.GetNonce(sender)
		}
		tx, err := statetestResign(tmpl, nonce, signer, key)
		if err != nil {
			return 0, []error{fmt.Errorf("re-sign tx %d: %w", i, err)}
		}
		signed[i] = tx
		gdb.SetTxContext(tx.Hash(), i)
		var out statetestOutcome
		msg, err := core.TransactionToMessage(tx, signer, blk.baseFee)
		if err == nil {
			snap := gdb.Snapshot()
			var res *core.ExecutionResult
			res, err = core.ApplyMessage(gevm, msg, core.NewGasPool(blk.gasLimit))
			if err != nil {
				gdb.RevertToSnapshot(snap)
			} else {
				out.failed, out.gasUsed = res.Failed(), res.UsedGas
				out.logs = statetestRLPHash(gdb.GetLogs(tx.Hash(), 0, common.Hash{}, 0))
			}
		}
		if err != nil {
			out.err = err.Error()
		}
		out.root = gdb.IntermediateRoot(true)
		want[i] = out
		roundGas += out.gasUsed
		if i == len(templates)-1 && roundGas > statetestSeqHeavyGas {
			// Compute-heavy test (precompile gas tables, loops until out of
			// gas): one round is enough, repeating adds time, not coverage.
			seq, signed, want = seq[:i+1], signed[:i+1], want[:i+1]
			break
		}
	}

	modes := []struct {
		name string
		run  func(*params.ChainConfig, *statetestBlock, *statetestCase, common.Address, []*types.Transaction, []statetestOutcome) error
	}{
		{"block", statetestSeqBlock},
		{"miniblocks", statetestSeqMiniBlocks},
		{"trie", statetestSeqTrie},
		{"merged", statetestSeqMerged},
	}
	for _, m := range modes {
		if err := m.run(config, blk, tc, sender, signed, want); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.name, err))
		}
	}
	return len(seq), errs
}

// statetestResign returns tx with the given nonce, signed again.
func statetestResign(tx *types.Transaction, nonce uint64, signer types.Signer, key *ecdsa.PrivateKey) (*types.Transaction, error) {
	u256 := func(b *big.Int) *uint256.Int { return uint256.MustFromBig(b) }
	var inner types.TxData
	switch tx.Type() {
	case types.LegacyTxType:
		inner = &types.LegacyTx{Nonce: nonce, GasPrice: tx.GasPrice(), Gas: tx.Gas(), To: tx.To(), Value: tx.Value(), Data: tx.Data()}
	case types.AccessListTxType:
		inner = &types.AccessListTx{ChainID: tx.ChainId(), Nonce: nonce, GasPrice: tx.GasPrice(), Gas: tx.Gas(), To: tx.To(), Value: tx.Value(), Data: tx.Data(), AccessList: tx.AccessList()}
	case types.DynamicFeeTxType:
		inner = &types.DynamicFeeTx{ChainID: tx.ChainId(), Nonce: nonce, GasTipCap: tx.GasTipCap(), GasFeeCap: tx.GasFeeCap(), Gas: tx.Gas(), To: tx.To(), Value: tx.Value(), Data: tx.Data(), AccessList: tx.AccessList()}
	case types.BlobTxType:
		inner = &types.BlobTx{ChainID: u256(tx.ChainId()), Nonce: nonce, GasTipCap: u256(tx.GasTipCap()), GasFeeCap: u256(tx.GasFeeCap()), Gas: tx.Gas(), To: *tx.To(), Value: u256(tx.Value()), Data: tx.Data(), AccessList: tx.AccessList(), BlobFeeCap: u256(tx.BlobGasFeeCap()), BlobHashes: tx.BlobHashes()}
	case types.SetCodeTxType:
		inner = &types.SetCodeTx{ChainID: u256(tx.ChainId()), Nonce: nonce, GasTipCap: u256(tx.GasTipCap()), GasFeeCap: u256(tx.GasFeeCap()), Gas: tx.Gas(), To: *tx.To(), Value: u256(tx.Value()), Data: tx.Data(), AccessList: tx.AccessList(), AuthList: tx.SetCodeAuthorizations()}
	default:
		return nil, fmt.Errorf("unsupported tx type %d", tx.Type())
	}
	return types.SignNewTx(key, signer, inner)
}

// statetestApply runs one transaction with Kestrel's executor and returns its
// outcome without the root.
func statetestApply(config *params.ChainConfig, blk *statetestBlock, sdb *state.StateDB, sender common.Address, tx *types.Transaction) statetestOutcome {
	evm := vm.NewEVM(blk.ctx, sdb, config, vm.Config{})
	return statetestApplyEVM(evm, blk, sdb, sender, tx)
}

func statetestApplyEVM(evm *vm.EVM, blk *statetestBlock, sdb *state.StateDB, sender common.Address, tx *types.Transaction) statetestOutcome {
	var out statetestOutcome
	receipt, err := exec.ApplyTx(evm, sdb, core.NewGasPool(blk.gasLimit), exec.Tx{Tx: tx, Sender: sender}, blk.baseFee, 0)
	if err != nil {
		out.err = err.Error()
		return out
	}
	out.failed = receipt.Status != types.ReceiptStatusSuccessful
	out.gasUsed = receipt.GasUsed
	out.logs = statetestRLPHash(receipt.Logs)
	return out
}

func statetestCompare(i int, got, want statetestOutcome, withRoot bool) error {
	if !withRoot {
		got.root, want.root = common.Hash{}, common.Hash{}
	}
	if got != want {
		return fmt.Errorf("tx %d: got %v, want %v", i, got, want)
	}
	return nil
}

// statetestSeqBlock: the whole sequence in one StateDB.
func statetestSeqBlock(config *params.ChainConfig, blk *statetestBlock, tc *statetestCase, sender common.Address, txs []*types.Transaction, want []statetestOutcome) error {
	st, _, merkle, err := statetestPreMerkle(tc)
	if err != nil {
		return err
	}
	view := st.View()
	defer view.Release()
	sdb := state.NewStateDB(view)
	evm := vm.NewEVM(blk.ctx, sdb, config, vm.Config{})
	for i, tx := range txs {
		if err := statetestCompare(i, statetestApplyEVM(evm, blk, sdb, sender, tx), want[i], false); err != nil {
			return err
		}
	}
	d := sdb.Diff()
	if err := d.Validate(); err != nil {
		return err
	}
	root, err := merkle.Apply(2, d)
	if err != nil {
		return err
	}
	if w := want[len(want)-1].root; root != w {
		return fmt.Errorf("final root %x, want %x", root, w)
	}
	return nil
}

// statetestSeqMiniBlocks: one StateDB per transaction over the flat state.
func statetestSeqMiniBlocks(config *params.ChainConfig, blk *statetestBlock, tc *statetestCase, sender common.Address, txs []*types.Transaction, want []statetestOutcome) error {
	st, _, merkle, err := statetestPreMerkle(tc)
	if err != nil {
		return err
	}
	var pinned []*state.View
	defer func() {
		for _, v := range pinned {
			v.Release()
		}
	}()
	for i, tx := range txs {
		// Keep old views pinned for a while so that reads go through layers;
		// release them now and then so that layers get folded into the base.
		if i%4 == 3 {
			for _, v := range pinned {
				v.Release()
			}
			pinned = nil
		}
		view := st.View()
		sdb := state.NewStateDB(view)
		got := statetestApply(config, blk, sdb, sender, tx)
		d := sdb.Diff()
		if err := d.Validate(); err != nil {
			return fmt.Errorf("tx %d: %w", i, err)
		}
		idx := st.HeadIndex() + 1
		st.Commit(idx, d)
		pinned = append(pinned, view)
		if got.root, err = merkle.Apply(idx, d); err != nil {
			return err
		}
		if err := statetestCompare(i, got, want[i], true); err != nil {
			return err
		}
	}
	return nil
}

// statetestSeqTrie: one StateDB per transaction over the tries.
func statetestSeqTrie(config *params.ChainConfig, blk *statetestBlock, tc *statetestCase, sender common.Address, txs []*types.Transaction, want []statetestOutcome) error {
	_, pre, merkle, err := statetestPreMerkle(tc)
	if err != nil {
		return err
	}
	codes := make(map[common.Hash][]byte)
	addCodes := func(d *chain.StateDiff) {
		for _, a := range d.Accounts {
			if len(a.Code) > 0 {
				codes[a.CodeHash] = a.Code
			}
		}
	}
	addCodes(pre)
	for i, tx := range txs {
		r, err := merkle.Reader(merkle.Root(), func(h common.Hash) []byte { return codes[h] })
		if err != nil {
			return err
		}
		sdb := state.NewStateDB(r)
		got := statetestApply(config, blk, sdb, sender, tx)
		d := sdb.Diff()
		if err := d.Validate(); err != nil {
			return fmt.Errorf("tx %d: %w", i, err)
		}
		addCodes(d)
		if got.root, err = merkle.Apply(uint64(i+2), d); err != nil {
			return err
		}
		if err := statetestCompare(i, got, want[i], true); err != nil {
			return err
		}
	}
	return nil
}

// statetestSeqMerged: one mini-block per transaction, the tries updated per
// block of three mini-blocks from the merged diffs.
func statetestSeqMerged(config *params.ChainConfig, blk *statetestBlock, tc *statetestCase, sender common.Address, txs []*types.Transaction, want []statetestOutcome) error {
	st, _, merkle, err := statetestPreMerkle(tc)
	if err != nil {
		return err
	}
	var block []*chain.StateDiff
	for i, tx := range txs {
		sdb := state.NewStateDB(st.Head())
		got := statetestApply(config, blk, sdb, sender, tx)
		d := sdb.Diff()
		st.Commit(st.HeadIndex()+1, d)
		block = append(block, d)
		if err := statetestCompare(i, got, want[i], false); err != nil {
			return err
		}
		if len(block) == 3 || i == len(txs)-1 {
			merged := chain.MergeDiffs(block)
			block = nil
			if err := merged.Validate(); err != nil {
				return fmt.Errorf("tx %d: merged diff: %w", i, err)
			}
			root, err := merkle.Apply(uint64(i+2), merged)
			if err != nil {
				return err
			}
			if root != want[i].root {
				return fmt.Errorf("tx %d: block root %x, want %x", i, root, want[i].root)
			}
		}
	}
	return nil
}

// statetestPreMerkle builds a test's pre-state, flat and in tries (as block 1).
func statetestPreMerkle(tc *statetestCase) (*state.State, *chain.StateDiff, *state.Merkle, error) {
	st, pre, err := statetestPreState(tc.Pre)
	if err != nil {
		return nil, nil, nil, err
	}
	merkle := state.NewMerkle(2)
	if _, err := merkle.Apply(1, pre); err != nil {
		return nil, nil, nil, err
	}
	return st, pre, merkle, nil
}
