package bench

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/triedb"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// DefaultBlockTxs is the baseline's transactions per block: about what a 36M-gas
// Ethereum block holds of ETH transfers.
const DefaultBlockTxs = 2000

// BaselineOptions configure a go-ethereum baseline run.
type BaselineOptions struct {
	// BlockTxs is the number of transactions per block (DefaultBlockTxs if 0).
	BlockTxs int
	// Root computes the state root (StateDB.IntermediateRoot) after every block.
	Root bool
}

// BaselineResult is one baseline run.
type BaselineResult struct {
	Txs      int           `json:"txs"`
	Blocks   int           `json:"blocks"`
	BlockTxs int           `json:"blockTxs"`
	Root     bool          `json:"root"`
	Elapsed  time.Duration `json:"elapsedNs"`
	TxPerSec float64       `json:"txPerSec"`
	GasUsed  uint64        `json:"gasUsed"`
	// CPU is the process's CPU time during the run (GC workers included);
	// TxPerCPUSec = Txs / CPU, a figure that other load on the machine skews less.
	CPU         time.Duration `json:"cpuNs"`
	TxPerCPUSec float64       `json:"txPerCpuSec"`
	// FinalRoot is the state root after the last block (Root runs only).
	FinalRoot *common.Hash `json:"finalRoot,omitempty"`
}

// baselineState is a fresh copy of the workload's pre-state in go-ethereum's
// StateDB over an in-memory database (hash-scheme trie database).
type baselineState struct {
	db    state.Database
	root  common.Hash
	cfg   *params.ChainConfig
	gen   *chain.Genesis
	state *state.StateDB
}

func newBaselineState(g *chain.Genesis) (*baselineState, error) {
	mem := rawdb.NewMemoryDatabase()
	db := state.NewDatabase(triedb.NewDatabase(mem, nil), state.NewCodeDB(mem))
	sdb, err := state.New(types.EmptyRootHash, db)
	if err != nil {
		return nil, err
	}
	for addr, acc := range g.Alloc {
		sdb.SetBalance(addr, uint256.MustFromBig(acc.Balance), tracing.BalanceChangeUnspecified)
		if acc.Nonce != 0 {
			sdb.SetNonce(addr, acc.Nonce, tracing.NonceChangeUnspecified)
		}
		if len(acc.Code) != 0 {
			sdb.SetCode(addr, acc.Code, tracing.CodeChangeUnspecified)
		}
		for k, v := range acc.Storage {
			sdb.SetState(addr, k, v)
		}
	}
	root, err := sdb.Commit(0, true, false)
	if err != nil {
		return nil, fmt.Errorf("commit pre-state: %w", err)
	}
	if err := db.TrieDB().Commit(root, false); err != nil {
		return nil, fmt.Errorf("flush pre-state: %w", err)
	}
	// A fresh StateDB over the committed root: every account is read from the trie
	// on first touch, as in block processing.
	fresh, err := state.New(root, db)
	if err != nil {
		return nil, err
	}
	return &baselineState{db: db, root: root, cfg: g.ChainConfig(), gen: g, state: fresh}, nil
}

func fakeHash(n uint64) common.Hash {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return crypto.Keccak256Hash([]byte("kestrel-bench/block"), b[:])
}

// RunBaseline processes txs the way go-ethereum's block processor does, on one
// goroutine: per block an EVM with the EIP-4788 and EIP-2935 system calls, then
// per transaction decoding the raw bytes, recovering the sender with a fresh
// signer (no signature cache), and core.ApplyTransactionWithEVM (which finalises
// the state and builds the receipt with its bloom); optionally
// IntermediateRoot per block. Building the pre-state is not timed. Any
// transaction that fails or does not succeed (status 0) is an error: the
// baseline must do exactly the work Kestrel does.
func RunBaseline(w *Workload, txs []RawTx, opts BaselineOptions) (*BaselineResult, *state.StateDB, error) {
	if opts.BlockTxs <= 0 {
		opts.BlockTxs = DefaultBlockTxs
	}
	bs, err := newBaselineState(w.Genesis())
	if err != nil {
		return nil, nil, err
	}
	g, cfg, sdb := bs.gen, bs.cfg, bs.state
	res := &BaselineResult{Txs: len(txs), BlockTxs: opts.BlockTxs, Root: opts.Root}
	parent := fakeHash(0)
	cpu0 := processCPU()
	start := time.Now()
	for first := 0; first < len(txs); first += opts.BlockTxs {
		group := txs[first:min(first+opts.BlockTxs, len(txs))]
		res.Blocks++
		number := uint64(res.Blocks)
		num := new(big.Int).SetUint64(number)
		blockTime := g.Timestamp + number
		blockHash := fakeHash(number)
		random := common.Hash{}
		blockCtx := vm.BlockContext{
			CanTransfer: core.CanTransfer, Transfer: core.Transfer,
			GetHash:  func(n uint64) common.Hash { return fakeHash(n) },
			Coinbase: g.Coinbase, GasLimit: g.GasLimit, BlockNumber: num, Time: blockTime,
			Difficulty: new(big.Int), BaseFee: new(big.Int).Set(g.BaseFee),
			BlobBaseFee: big.NewInt(params.BlobTxMinBlobGasprice), Random: &random,
		}
		evm := vm.NewEVM(blockCtx, sdb, cfg, vm.Config{})
		core.ProcessBeaconBlockRoot(common.Hash{}, evm)
		core.ProcessParentBlockHash(parent, evm)
		gp := core.NewGasPool(g.GasLimit)
		for i, t := range group {
			tx := new(types.Transaction)
			if err := tx.UnmarshalBinary(t.Raw); err != nil {
				return nil, nil, fmt.Errorf("decode tx %d: %w", first+i, err)
			}
			msg, err := core.TransactionToMessage(tx, types.MakeSigner(cfg, num, blockTime), blockCtx.BaseFee)
			if err != nil {
				return nil, nil, fmt.Errorf("tx %d: %w", first+i, err)
			}
			sdb.SetTxContext(tx.Hash(), i)
			receipt, err := core.ApplyTransactionWithEVM(msg, gp, sdb, num, blockHash, blockTime, tx, evm)
			if err != nil {
				return nil, nil, fmt.Errorf("apply tx %d: %w", first+i, err)
			}
			if receipt.Status != types.ReceiptStatusSuccessful {
				return nil, nil, fmt.Errorf("tx %d (%s) failed in the baseline", first+i, tx.Hash())
			}
			res.GasUsed += receipt.GasUsed
		}
		if opts.Root {
			root := sdb.IntermediateRoot(true)
			res.FinalRoot = &root
		}
		parent = blockHash
	}
	res.Elapsed = time.Since(start)
	res.CPU = processCPU() - cpu0
	res.TxPerSec = float64(len(txs)) / res.Elapsed.Seconds()
	if res.CPU > 0 {
		res.TxPerCPUSec = float64(len(txs)) / res.CPU.Seconds()
	}
	return res, sdb, nil
}

// CheckBaselineState verifies the baseline's final state: every sender's nonce
// and every recipient's balance (ETH or token) as txs imply.
func CheckBaselineState(w *Workload, txs []RawTx, sdb *state.StateDB) error {
	sent := w.SentBy(txs)
	for i, s := range w.Senders {
		if got, want := sdb.GetNonce(s.Addr), s.StartNonce+sent[i]; got != want {
			return fmt.Errorf("sender %s nonce %d, want %d", s.Addr, got, want)
		}
	}
	for j, want := range w.Received(txs) {
		addr := w.Recipients[j]
		var got *big.Int
		if w.Config.Kind == KindERC20 {
			got = sdb.GetState(w.Token, TokenBalanceSlot(addr)).Big()
		} else {
			got = sdb.GetBalance(addr).ToBig()
		}
		if got.Cmp(want) != 0 {
			return fmt.Errorf("recipient %s holds %v, want %v", addr, got, want)
		}
	}
	return nil
}
