package statetest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/consensus/misc/eip4844"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/tests"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/exec"
	"github.com/kestrel-l2/kestrel/core/state"
)

// Mode selects the execution engine.
type Mode int

const (
	// Sequential applies the transaction with Kestrel's sequential engine
	// (exec.Sequential), the sequencer's reference executor.
	Sequential Mode = iota
	// Parallel applies it with the Block-STM engine (exec.Parallel), forced
	// to run Block-STM even for this one transaction.
	Parallel
)

func (m Mode) String() string {
	switch m {
	case Sequential:
		return "sequential"
	case Parallel:
		return "parallel"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses "sequential" or "parallel" (case-insensitive).
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(s) {
	case "sequential":
		return Sequential, nil
	case "parallel":
		return Parallel, nil
	}
	return 0, fmt.Errorf("unknown mode %q (want sequential or parallel)", s)
}

// Executor returns the mode's engine.
func (m Mode) Executor() (exec.Executor, error) {
	switch m {
	case Sequential:
		return exec.Sequential{}, nil
	case Parallel:
		return exec.NewParallel(exec.ParallelConfig{Mode: exec.ModeParallel}), nil
	}
	return nil, fmt.Errorf("unknown mode %d", int(m))
}

// ForkConfig returns the chain configuration of a fork (matched
// case-insensitively) and its canonical name.
func ForkConfig(fork string) (*params.ChainConfig, string, error) {
	if c, ok := tests.Forks[fork]; ok {
		return c, fork, nil
	}
	for name, c := range tests.Forks {
		if strings.EqualFold(name, fork) {
			return c, name, nil
		}
	}
	return nil, "", fmt.Errorf("unknown fork %q", fork)
}

// Block is the block a test's transaction executes in.
type Block struct {
	Context  vm.BlockContext
	BaseFee  *big.Int
	GasLimit uint64
}

// BlockEnv builds the block context from env as go-ethereum's runner does
// (through core.NewEVMBlockContext of the genesis block it makes).
func BlockEnv(config *params.ChainConfig, env *Env) *Block {
	timestamp := uint64(env.Timestamp)
	var baseFee *big.Int
	if config.IsLondon(new(big.Int)) {
		baseFee = big.NewInt(0x0a) // go-ethereum's runner default
		if env.BaseFee != nil {
			baseFee = (*big.Int)(env.BaseFee)
		}
	}
	gasLimit := uint64(env.GasLimit)
	if gasLimit == 0 {
		gasLimit = params.GenesisGasLimit
	}
	ctx := vm.BlockContext{
		CanTransfer: core.CanTransfer,
		Transfer:    core.Transfer,
		GetHash:     blockHash,
		Coinbase:    common.Address(env.Coinbase),
		GasLimit:    gasLimit,
		BlockNumber: new(big.Int).SetUint64(uint64(env.Number)),
		Time:        timestamp,
		Difficulty:  new(big.Int).Set(params.GenesisDifficulty),
		BaseFee:     baseFee,
	}
	if env.Difficulty != nil {
		ctx.Difficulty = new(big.Int).Set((*big.Int)(env.Difficulty))
	}
	if config.IsLondon(new(big.Int)) && env.Random != nil {
		rnd := common.BigToHash((*big.Int)(env.Random))
		ctx.Random = &rnd
		ctx.Difficulty = new(big.Int)
	}
	if config.IsCancun(new(big.Int), timestamp) {
		// The genesis block go-ethereum's runner builds has a zero excess blob gas
		// when the test gives none.
		excess := uint64(0)
		if env.ExcessBlobGas != nil {
			excess = uint64(*env.ExcessBlobGas)
		}
		ctx.BlobBaseFee = eip4844.CalcBlobFee(config, &types.Header{Time: timestamp, ExcessBlobGas: &excess})
	}
	return &Block{Context: ctx, BaseFee: baseFee, GasLimit: gasLimit}
}

func blockHash(n uint64) common.Hash {
	return common.BytesToHash(crypto.Keccak256([]byte(new(big.Int).SetUint64(n).String())))
}

// RLPHash is the keccak of x's RLP encoding (the fixtures' logs hash).
func RLPHash(x any) common.Hash {
	enc, err := rlp.EncodeToBytes(x)
	if err != nil {
		panic(err)
	}
	return crypto.Keccak256Hash(enc)
}

// PreState restores the allocation into a fresh flat state at index 1 and
// returns it with the allocation as a diff (to build the pre-state tries).
func PreState(alloc types.GenesisAlloc) (*state.State, *chain.StateDiff, error) {
	st := state.New()
	pre := &chain.StateDiff{}
	for addr, a := range alloc {
		acct := state.Account{Nonce: a.Nonce, CodeHash: types.EmptyCodeHash}
		if a.Balance != nil {
			bal, overflow := uint256.FromBig(a.Balance)
			if overflow || a.Balance.Sign() < 0 {
				return nil, nil, fmt.Errorf("pre-state: %s: balance %s out of range", addr, a.Balance)
			}
			acct.Balance = *bal
		}
		if len(a.Code) > 0 {
			acct.CodeHash = crypto.Keccak256Hash(a.Code)
		}
		storage := make(map[common.Hash]common.Hash)
		ad := chain.AccountDiff{Address: addr, Nonce: acct.Nonce, Balance: acct.Balance, CodeHash: acct.CodeHash}
		if len(a.Code) > 0 {
			ad.Code = a.Code
		}
		for k, v := range a.Storage {
			if v != (common.Hash{}) {
				storage[k] = v
				ad.Storage = append(ad.Storage, chain.SlotDiff{Key: k, Value: v})
			}
		}
		st.Restore(addr, acct, a.Code, storage)
		pre.Accounts = append(pre.Accounts, ad)
	}
	st.SetIndex(1)
	pre.Sort()
	if err := pre.Validate(); err != nil {
		return nil, nil, fmt.Errorf("pre-state diff: %w", err)
	}
	return st, pre, nil
}

// Message picks one transaction out of the template as go-ethereum's runner
// does.
func Message(tx *Tx, post *PostEntry, baseFee *big.Int) (*core.Message, error) {
	var from common.Address
	if tx.Sender != nil {
		from = *tx.Sender
	} else if len(tx.PrivateKey) > 0 {
		key, err := crypto.ToECDSA(tx.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("invalid private key: %v", err)
		}
		from = crypto.PubkeyToAddress(key.PublicKey)
	}
	if len(tx.PrivateKey) > 0 {
		// The fixture's sender must be the key's address.
		key, err := crypto.ToECDSA(tx.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("invalid private key: %v", err)
		}
		if crypto.PubkeyToAddress(key.PublicKey) != from {
			return nil, fmt.Errorf("sender %s does not match secret key", from)
		}
	}
	var to *common.Address
	if tx.To != "" {
		to = new(common.Address)
		if err := to.UnmarshalText([]byte(tx.To)); err != nil {
			return nil, fmt.Errorf("invalid to address: %v", err)
		}
	}
	idx := post.Indexes
	if idx.Data < 0 || idx.Data >= len(tx.Data) || idx.Value < 0 || idx.Value >= len(tx.Value) || idx.Gas < 0 || idx.Gas >= len(tx.GasLimit) {
		return nil, fmt.Errorf("indexes %+v out of bounds", idx)
	}
	value := new(big.Int)
	if v := tx.Value[idx.Value]; v != "0x" {
		parsed, ok := math.ParseBig256(v)
		if !ok {
			return nil, fmt.Errorf("invalid tx value %q", v)
		}
		value = parsed
	}
	data, err := hex.DecodeString(strings.TrimPrefix(tx.Data[idx.Data], "0x"))
	if err != nil {
		return nil, fmt.Errorf("invalid tx data %q", tx.Data[idx.Data])
	}
	var accessList types.AccessList
	if idx.Data < len(tx.AccessLists) && tx.AccessLists[idx.Data] != nil {
		accessList = *tx.AccessLists[idx.Data]
	}
	gasPrice := (*big.Int)(tx.GasPrice)
	feeCap := (*big.Int)(tx.MaxFeePerGas)
	tipCap := (*big.Int)(tx.MaxPriorityFeePerGas)
	if baseFee != nil {
		if feeCap == nil {
			feeCap = gasPrice
		}
		if feeCap == nil {
			feeCap = new(big.Int)
		}
		if tipCap == nil {
			tipCap = feeCap
		}
		gasPrice = new(big.Int).Add(tipCap, baseFee)
		if gasPrice.Cmp(feeCap) > 0 {
			gasPrice = feeCap
		}
	}
	if gasPrice == nil {
		return nil, errors.New("no gas price provided")
	}
	var auths []types.SetCodeAuthorization
	if tx.AuthorizationList != nil {
		auths = make([]types.SetCodeAuthorization, len(tx.AuthorizationList))
		for i, a := range tx.AuthorizationList {
			if a == nil {
				return nil, fmt.Errorf("authorization %d is null", i)
			}
			var u [3]*uint256.Int
			for j, b := range []*math.HexOrDecimal256{a.ChainID, a.R, a.S} {
				u[j] = new(uint256.Int)
				if b != nil {
					v, overflow := uint256.FromBig((*big.Int)(b))
					if overflow {
						return nil, fmt.Errorf("authorization %d: value out of range", i)
					}
					u[j] = v
				}
			}
			auths[i] = types.SetCodeAuthorization{
				ChainID: *u[0],
				Address: a.Address,
				Nonce:   uint64(a.Nonce),
				V:       uint8(a.V),
				R:       *u[1],
				S:       *u[2],
			}
		}
	}
	return &core.Message{
		From:                  from,
		To:                    to,
		Nonce:                 uint64(tx.Nonce),
		Value:                 value,
		GasLimit:              uint64(tx.GasLimit[idx.Gas]),
		GasPrice:              gasPrice,
		GasFeeCap:             feeCap,
		GasTipCap:             tipCap,
		Data:                  data,
		AccessList:            accessList,
		BlobHashes:            tx.BlobVersionedHashes,
		BlobGasFeeCap:         (*big.Int)(tx.BlobGasFeeCap),
		SetCodeAuthorizations: auths,
	}, nil
}

// Entry is one (test, fork, post entry).
type Entry struct {
	File, Name, Fork string
	Index            int
	Test             *Test
	Post             *PostEntry
}

func (e *Entry) String() string {
	return fmt.Sprintf("%s :: %s [%s #%d d=%d g=%d v=%d]", e.File, e.Name, e.Fork, e.Index,
		e.Post.Indexes.Data, e.Post.Indexes.Gas, e.Post.Indexes.Value)
}

// Outcome is what executing an entry produced. The post diff is not committed
// to State; Pinned is a view of the pre-state held open so that a commit stays
// an unflattened layer until it is released (Release is idempotent).
type Outcome struct {
	State   *state.State
	Pinned  *state.View
	Diff    *chain.StateDiff // after its wire encoding round trip
	Logs    []*types.Log
	Root    common.Hash
	ExecErr error // the transaction's rejection, if it was rejected
}

// Check runs the entry with exec and returns why it failed, if it did: the
// expected exception, the post-state root and the logs hash are compared with
// the fixture. post, if not nil, runs extra checks after those passed. Panics
// are returned as errors.
func (e *Entry) Check(x exec.Executor, post func(*Entry, *Outcome) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	out, err := e.Execute(x)
	if err != nil {
		return err
	}
	defer out.Pinned.Release()
	p := e.Post
	if out.ExecErr == nil && p.ExpectException != "" {
		return fmt.Errorf("expected exception %q, got none", p.ExpectException)
	}
	if out.ExecErr != nil && p.ExpectException == "" {
		return fmt.Errorf("unexpected error: %w", out.ExecErr)
	}
	if out.Root != common.Hash(p.Root) {
		return fmt.Errorf("state root mismatch: got %x, want %x (exec error: %v)\n%s", out.Root, common.Hash(p.Root), out.ExecErr,
			Explain(e.Test.Pre, p.State, out.Diff))
	}
	if out.ExecErr == nil {
		if h := RLPHash(out.Logs); h != common.Hash(p.Logs) {
			return fmt.Errorf("logs hash mismatch: got %x, want %x", h, common.Hash(p.Logs))
		}
	}
	if post != nil {
		return post(e, out)
	}
	return nil
}

// Execute builds the pre-state and its tries, applies the entry's transaction
// with the executor over the flat state (as a one-transaction request in the
// test's block, with go-ethereum's runner's zero-value touch of the coinbase)
// and computes the post-state root from the diff. A transaction the runner or
// the executor rejects is not an error here: it is in Outcome.ExecErr, and
// the state is left unchanged.
func (e *Entry) Execute(x exec.Executor) (*Outcome, error) {
	config, _, err := ForkConfig(e.Fork)
	if err != nil {
		return nil, err
	}
	tc, p := e.Test, e.Post

	// Pre-state: the flat state restored from the allocation, and the tries built
	// from the same allocation as one diff.
	st, pre, err := PreState(tc.Pre)
	if err != nil {
		return nil, err
	}
	merkle := state.NewMerkle(2)
	if _, err := merkle.Apply(1, pre); err != nil {
		return nil, fmt.Errorf("pre-state root: %w", err)
	}

	pinned := st.View() // keeps the next commit in a layer, so reads use the layer path
	out := &Outcome{State: st, Pinned: pinned}
	ok := false
	defer func() {
		if !ok {
			pinned.Release()
		}
	}()
	diff, logs, execErr, err := execute(x, config, tc, p, pinned)
	if err != nil {
		return nil, err
	}
	out.ExecErr, out.Logs = execErr, logs
	if err := diff.Validate(); err != nil {
		return nil, fmt.Errorf("post diff: %w", err)
	}
	// The diff must survive its wire encoding unchanged.
	enc, err := diff.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode diff: %w", err)
	}
	out.Diff = new(chain.StateDiff)
	if err := out.Diff.UnmarshalBinary(enc); err != nil {
		return nil, fmt.Errorf("decode diff: %w", err)
	}
	if out.Root, err = merkle.Apply(2, out.Diff); err != nil {
		return nil, fmt.Errorf("post-state root: %w", err)
	}
	ok = true
	return out, nil
}

// execute builds the message, performs the runner's validity checks and
// applies the message with the executor. It returns the diff and logs, the
// transaction's rejection (execErr; the diff is then empty), and err when the
// executor failed.
func execute(x exec.Executor, config *params.ChainConfig, tc *Test, post *PostEntry, r state.Reader) (diff *chain.StateDiff, logs []*types.Log, execErr, err error) {
	blk := BlockEnv(config, &tc.Env)
	msg, execErr := message(config, blk, tc, post)
	if execErr != nil {
		return &chain.StateDiff{}, nil, execErr, nil
	}
	env := &exec.Env{
		Config:        config,
		Block:         chain.BlockEnv{Number: uint64(tc.Env.Number), Time: blk.Context.Time, BaseFee: blk.BaseFee, GasLimit: blk.GasLimit, Coinbase: blk.Context.Coinbase},
		Context:       &blk.Context,
		TouchCoinbase: true,
	}
	res, err := x.Execute(context.Background(), r, env, &exec.Request{Txs: []exec.Tx{{Msg: msg}}})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("executor: %w", err)
	}
	if len(res.Rejected) > 0 {
		return res.Diff, nil, res.Rejected[0].Err, nil
	}
	return res.Diff, res.Receipts[0].Logs, nil, nil
}

// message builds the entry's message with the runner's validity checks.
func message(config *params.ChainConfig, blk *Block, tc *Test, post *PostEntry) (*core.Message, error) {
	msg, err := Message(&tc.Tx, post, blk.BaseFee)
	if err != nil {
		return nil, err
	}
	if config.IsCancun(new(big.Int), blk.Context.Time) && len(msg.BlobHashes) > eip4844.MaxBlobsPerBlock(config, blk.Context.Time) {
		return nil, errors.New("blob gas exceeds maximum")
	}
	if len(post.TxBytes) != 0 {
		var tx types.Transaction
		if err := tx.UnmarshalBinary(post.TxBytes); err != nil {
			return nil, err
		}
		if _, err := types.Sender(types.LatestSigner(config), &tx); err != nil {
			return nil, err
		}
	}
	return msg, nil
}

// Explain describes how pre + d differs from the expected post state, for
// failure messages.
func Explain(pre, want types.GenesisAlloc, d *chain.StateDiff) string {
	got := make(map[common.Address]types.Account, len(pre))
	for addr, a := range pre {
		got[addr] = types.Account{Nonce: a.Nonce, Balance: a.Balance, Code: a.Code, Storage: NonZero(a.Storage)}
	}
	for _, ad := range d.Accounts {
		if ad.Deleted {
			delete(got, ad.Address)
			continue
		}
		a := got[ad.Address]
		if ad.StorageReset || a.Storage == nil {
			a.Storage = make(map[common.Hash]common.Hash)
		} else {
			a.Storage = NonZero(a.Storage)
		}
		for _, s := range ad.Storage {
			if s.Value == (common.Hash{}) {
				delete(a.Storage, s.Key)
			} else {
				a.Storage[s.Key] = s.Value
			}
		}
		a.Nonce, a.Balance = ad.Nonce, ad.Balance.ToBig()
		if ad.Code != nil {
			a.Code = ad.Code
		}
		if ad.CodeHash == types.EmptyCodeHash {
			a.Code = nil
		}
		got[ad.Address] = a
	}
	var lines []string
	for addr, w := range want {
		g, ok := got[addr]
		if !ok {
			lines = append(lines, fmt.Sprintf("  %s: missing", addr))
			continue
		}
		bal := new(uint256.Int)
		if g.Balance != nil {
			bal = uint256.MustFromBig(g.Balance)
		}
		codeHash := types.EmptyCodeHash
		if len(g.Code) > 0 {
			codeHash = crypto.Keccak256Hash(g.Code)
		}
		if err := CompareAccount(addr, w, g.Nonce, bal, g.Code, codeHash); err != nil {
			lines = append(lines, "  "+err.Error())
		}
		ws := NonZero(w.Storage)
		for k, v := range ws {
			if g.Storage[k] != v {
				lines = append(lines, fmt.Sprintf("  %s: slot %x = %x, want %x", addr, k, g.Storage[k], v))
			}
		}
		for k, v := range g.Storage {
			if _, ok := ws[k]; !ok {
				lines = append(lines, fmt.Sprintf("  %s: slot %x = %x, want absent", addr, k, v))
			}
		}
	}
	for addr := range got {
		if _, ok := want[addr]; !ok {
			lines = append(lines, fmt.Sprintf("  %s: exists, want absent", addr))
		}
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return "  (post state matches the fixture's; the root differs anyway)"
	}
	return strings.Join(lines, "\n")
}

// NonZero returns m without its zero values.
func NonZero(m map[common.Hash]common.Hash) map[common.Hash]common.Hash {
	out := make(map[common.Hash]common.Hash, len(m))
	for k, v := range m {
		if v != (common.Hash{}) {
			out[k] = v
		}
	}
	return out
}

// CompareAccount compares an account's fields with the expected account.
func CompareAccount(addr common.Address, want types.Account, nonce uint64, balance *uint256.Int, code []byte, codeHash common.Hash) error {
	wantBal := new(uint256.Int)
	if want.Balance != nil {
		wantBal = uint256.MustFromBig(want.Balance)
	}
	wantHash := types.EmptyCodeHash
	if len(want.Code) > 0 {
		wantHash = crypto.Keccak256Hash(want.Code)
	}
	switch {
	case nonce != want.Nonce:
		return fmt.Errorf("%s: nonce %d, want %d", addr, nonce, want.Nonce)
	case !balance.Eq(wantBal):
		return fmt.Errorf("%s: balance %s, want %s", addr, balance, wantBal)
	case codeHash != wantHash:
		return fmt.Errorf("%s: code hash %x, want %x", addr, codeHash, wantHash)
	case string(code) != string(want.Code):
		return fmt.Errorf("%s: code %x, want %x", addr, code, want.Code)
	}
	return nil
}
