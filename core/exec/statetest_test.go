package exec_test

// Ethereum state tests (execution-spec-tests "state_test" fixtures) run against
// Kestrel's flat state, its vm.StateDB and its Merkle tries, following
// go-ethereum's tests/state_test_util.go: build the pre-state, execute the
// selected transaction with core.ApplyMessage, touch the coinbase with a zero
// value, finalise with EIP-158 and compare the state root and the logs hash with
// the fixture. The post-state is also committed to the flat state and compared,
// account by account, with the fixture's expected post state.
//
// The fixtures are vendored in testdata/ethereum-state-tests.tar.gz and streamed
// from the archive. By default a representative subset runs (every
// statetestShortStride-th file); KESTREL_STATE_TESTS=full runs every file.
// KESTREL_STATE_TESTS_FILTER=<substring> restricts the run to the files whose
// path contains the substring (with every file of the subset or full run).
//
// Companions: statetest_sequence_test.go replays the fixtures' transactions in
// sequences against go-ethereum's state.StateDB (cross-transaction and
// cross-mini-block state), statetest_statedb_test.go is a randomized
// differential test of the vm.StateDB interface against go-ethereum's, and
// statetest_regress_test.go holds regression tests for the bugs they found.
// The full run (all three) takes about two minutes on two cores.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/consensus/misc/eip4844"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/tests"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/state"
)

const (
	statetestArchive = "testdata/ethereum-state-tests.tar.gz"
	// statetestShortStride picks every n-th fixture file in the default run.
	statetestShortStride = 6
)

// statetestForks are the forks whose post entries run, in report order.
var statetestForks = []string{"Cancun", "Prague", "Osaka"}

// statetestUnsupported lists fixture files (path suffixes) skipped on purpose,
// with the reason. Keep it empty unless a category is unsupported by design.
var statetestUnsupported = map[string]string{}

// --- fixture format -----------------------------------------------------------

type statetestEnv struct {
	Coinbase      common.UnprefixedAddress `json:"currentCoinbase"`
	Difficulty    *math.HexOrDecimal256    `json:"currentDifficulty"`
	Random        *math.HexOrDecimal256    `json:"currentRandom"`
	GasLimit      math.HexOrDecimal64      `json:"currentGasLimit"`
	Number        math.HexOrDecimal64      `json:"currentNumber"`
	Timestamp     math.HexOrDecimal64      `json:"currentTimestamp"`
	BaseFee       *math.HexOrDecimal256    `json:"currentBaseFee"`
	ExcessBlobGas *math.HexOrDecimal64     `json:"currentExcessBlobGas"`
}

type statetestAuth struct {
	ChainID *math.HexOrDecimal256 `json:"chainId"`
	Address common.Address        `json:"address"`
	Nonce   math.HexOrDecimal64   `json:"nonce"`
	V       math.HexOrDecimal64   `json:"v"`
	R       *math.HexOrDecimal256 `json:"r"`
	S       *math.HexOrDecimal256 `json:"s"`
}

type statetestTx struct {
	GasPrice             *math.HexOrDecimal256 `json:"gasPrice"`
	MaxFeePerGas         *math.HexOrDecimal256 `json:"maxFeePerGas"`
	MaxPriorityFeePerGas *math.HexOrDecimal256 `json:"maxPriorityFeePerGas"`
	Nonce                math.HexOrDecimal64   `json:"nonce"`
	To                   string                `json:"to"`
	Data                 []string              `json:"data"`
	AccessLists          []*types.AccessList   `json:"accessLists"`
	GasLimit             []math.HexOrDecimal64 `json:"gasLimit"`
	Value                []string              `json:"value"`
	PrivateKey           hexutil.Bytes         `json:"secretKey"`
	Sender               *common.Address       `json:"sender"`
	BlobVersionedHashes  []common.Hash         `json:"blobVersionedHashes"`
	BlobGasFeeCap        *math.HexOrDecimal256 `json:"maxFeePerBlobGas"`
	AuthorizationList    []*statetestAuth      `json:"authorizationList"`
}

type statetestPost struct {
	Root            common.UnprefixedHash `json:"hash"`
	Logs            common.UnprefixedHash `json:"logs"`
	TxBytes         hexutil.Bytes         `json:"txbytes"`
	ExpectException string                `json:"expectException"`
	Indexes         struct {
		Data  int `json:"data"`
		Gas   int `json:"gas"`
		Value int `json:"value"`
	} `json:"indexes"`
	State types.GenesisAlloc `json:"state"`
}

type statetestCase struct {
	Env  statetestEnv               `json:"env"`
	Pre  types.GenesisAlloc         `json:"pre"`
	Tx   statetestTx                `json:"transaction"`
	Post map[string]json.RawMessage `json:"post"`
}

// statetestJob is one (test, fork, post entry).
type statetestJob struct {
	file, name, fork string
	index            int
	test             *statetestCase
	post             *statetestPost
}

func (j *statetestJob) String() string {
	return fmt.Sprintf("%s :: %s [%s #%d d=%d g=%d v=%d]", j.file, j.name, j.fork, j.index,
		j.post.Indexes.Data, j.post.Indexes.Gas, j.post.Indexes.Value)
}

// --- runner -------------------------------------------------------------------

func TestStateTests(t *testing.T) {
	start := time.Now()
	type forkCount struct{ pass, fail int }
	var (
		mu       sync.Mutex
		counts   = make(map[string]*forkCount)
		failures []string
	)
	for _, fork := range statetestForks {
		counts[fork] = &forkCount{}
	}
	selected, files := statetestForEach(t, func(path, name, fork string, tc *statetestCase, posts []*statetestPost) {
		for i, p := range posts {
			j := &statetestJob{file: path, name: name, fork: fork, index: i, test: tc, post: p}
			err := statetestRun(j)
			mu.Lock()
			if err != nil {
				counts[fork].fail++
				failures = append(failures, fmt.Sprintf("%s: %v", j, err))
			} else {
				counts[fork].pass++
			}
			mu.Unlock()
		}
	})
	t.Logf("%s run: %d of %d fixture files, %s", statetestMode(), selected, files, time.Since(start).Round(time.Millisecond))
	total := 0
	for _, fork := range statetestForks {
		c := counts[fork]
		total += c.pass + c.fail
		t.Logf("%-7s pass %5d  fail %4d", fork, c.pass, c.fail)
	}
	if total == 0 {
		t.Fatal("no state test entries ran")
	}
	statetestReport(t, failures)
}

func statetestMode() string {
	if os.Getenv("KESTREL_STATE_TESTS") == "full" {
		return "full"
	}
	return "short"
}

// statetestReport fails t with the (sorted, capped) failures.
func statetestReport(t *testing.T, failures []string) {
	sort.Strings(failures)
	const maxReported = 100
	for i, msg := range failures {
		if i == maxReported {
			t.Errorf("... and %d more failures", len(failures)-maxReported)
			break
		}
		t.Error(msg)
	}
}

// statetestForEach streams the selected fixture files and calls fn, from
// GOMAXPROCS goroutines, for every test and fork of statetestForks it holds. It
// returns how many fixture files were selected and how many there are.
func statetestForEach(t *testing.T, fn func(path, name, fork string, tc *statetestCase, posts []*statetestPost)) (selected, files int) {
	full := statetestMode() == "full"
	filter := os.Getenv("KESTREL_STATE_TESTS_FILTER")
	f, err := os.Open(statetestArchive)
	if err != nil {
		t.Fatalf("open fixtures: %v", err)
	}
	defer f.Close()

	type job struct {
		path, name, fork string
		tc               *statetestCase
		posts            []*statetestPost
	}
	jobs := make(chan job, 16)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				fn(j.path, j.name, j.fork, j.tc, j.posts)
			}
		}()
	}
	readErr := statetestWalk(f, func(path string, body func() ([]byte, error)) error {
		if !strings.HasSuffix(path, ".json") {
			return nil
		}
		files++
		if !full && (files-1)%statetestShortStride != 0 {
			return nil
		}
		if filter != "" && !strings.Contains(path, filter) {
			return nil
		}
		for suffix, reason := range statetestUnsupported {
			if strings.HasSuffix(path, suffix) {
				t.Logf("skipping %s: %s", path, reason)
				return nil
			}
		}
		selected++
		raw, err := body()
		if err != nil {
			return err
		}
		var cases map[string]*statetestCase
		if err := json.Unmarshal(raw, &cases); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		names := make([]string, 0, len(cases))
		for name := range cases {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			tc := cases[name]
			for _, fork := range statetestForks {
				rawPosts, ok := tc.Post[fork]
				if !ok {
					continue
				}
				var posts []*statetestPost
				if err := json.Unmarshal(rawPosts, &posts); err != nil {
					return fmt.Errorf("%s %s %s: %w", path, name, fork, err)
				}
				jobs <- job{path: path, name: name, fork: fork, tc: tc, posts: posts}
			}
		}
		return nil
	})
	close(jobs)
	wg.Wait()
	if readErr != nil {
		t.Fatalf("read fixtures: %v", readErr)
	}
	return selected, files
}

// statetestWalk streams the gzip'd tar and calls fn for every regular file; body
// reads the file's content and is only valid during the call.
func statetestWalk(r io.Reader, fn func(path string, body func() ([]byte, error)) error) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if err := fn(hdr.Name, func() ([]byte, error) { return io.ReadAll(tr) }); err != nil {
			return err
		}
	}
}

// statetestRun runs one post entry and returns why it failed, if it did.
func statetestRun(j *statetestJob) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	config, ok := tests.Forks[j.fork]
	if !ok {
		return fmt.Errorf("unknown fork %s", j.fork)
	}
	tc, post := j.test, j.post

	// Pre-state: the flat state restored from the allocation, and the tries built
	// from the same allocation as one diff.
	st, pre, err := statetestPreState(tc.Pre)
	if err != nil {
		return err
	}
	merkle := state.NewMerkle(2)
	if _, err := merkle.Apply(1, pre); err != nil {
		return fmt.Errorf("pre-state root: %w", err)
	}

	// Execute.
	oldView := st.View() // keeps the next commit in a layer, so reads use the layer path
	sdb := state.NewStateDB(oldView)
	execErr := statetestExecute(config, tc, post, sdb)
	if execErr == nil && post.ExpectException != "" {
		return fmt.Errorf("expected exception %q, got none", post.ExpectException)
	}
	if execErr != nil && post.ExpectException == "" {
		return fmt.Errorf("unexpected error: %w", execErr)
	}
	sdb.Finalise(true)
	logs := sdb.TakeLogs()
	diff := sdb.Diff()
	if err := diff.Validate(); err != nil {
		return fmt.Errorf("post diff: %w", err)
	}
	// The diff must survive its wire encoding unchanged.
	enc, err := diff.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encode diff: %w", err)
	}
	var dec chain.StateDiff
	if err := dec.UnmarshalBinary(enc); err != nil {
		return fmt.Errorf("decode diff: %w", err)
	}
	root, err := merkle.Apply(2, &dec)
	if err != nil {
		return fmt.Errorf("post-state root: %w", err)
	}
	if root != common.Hash(post.Root) {
		return fmt.Errorf("state root mismatch: got %x, want %x (exec error: %v)\n%s", root, post.Root, execErr,
			statetestExplain(tc.Pre, post.State, &dec))
	}
	if execErr == nil {
		if h := statetestRLPHash(logs); h != common.Hash(post.Logs) {
			return fmt.Errorf("logs hash mismatch: got %x, want %x", h, post.Logs)
		}
	}

	// Commit the diff to the flat state and compare with the expected post state,
	// first through the unflattened layer, then through the base maps.
	st.Commit(2, &dec)
	view := st.View()
	err = statetestCheckReader(view, post.State)
	view.Release()
	oldView.Release()
	if err != nil {
		return fmt.Errorf("flat state (layer): %w", err)
	}
	if err := statetestCheckDump(st, post.State); err != nil {
		return fmt.Errorf("flat state (base): %w", err)
	}
	return nil
}

// statetestBlock is the block a test's transactions execute in.
type statetestBlock struct {
	ctx      vm.BlockContext
	baseFee  *big.Int
	gasLimit uint64
}

// statetestBlockEnv builds the block context from env as go-ethereum's runner
// does (through core.NewEVMBlockContext of the genesis block it makes).
func statetestBlockEnv(config *params.ChainConfig, env *statetestEnv) *statetestBlock {
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
		GetHash:     statetestBlockHash,
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
	return &statetestBlock{ctx: ctx, baseFee: baseFee, gasLimit: gasLimit}
}

// statetestPreState restores the allocation into a fresh flat state at index 1
// and returns it with the allocation as a diff (to build the pre-state tries).
func statetestPreState(alloc types.GenesisAlloc) (*state.State, *chain.StateDiff, error) {
	st := state.New()
	pre := &chain.StateDiff{}
	for addr, a := range alloc {
		acct := state.Account{Nonce: a.Nonce, CodeHash: types.EmptyCodeHash}
		if a.Balance != nil {
			acct.Balance = *uint256.MustFromBig(a.Balance)
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

// statetestExecute builds the message as go-ethereum's runner does, performs
// the runner's validity checks and applies the message. On error the state is
// reverted.
func statetestExecute(config *params.ChainConfig, tc *statetestCase, post *statetestPost, sdb *state.StateDB) error {
	blk := statetestBlockEnv(config, &tc.Env)
	msg, err := statetestMessage(&tc.Tx, post, blk.baseFee)
	if err != nil {
		return err
	}
	if config.IsCancun(new(big.Int), blk.ctx.Time) && len(msg.BlobHashes) > eip4844.MaxBlobsPerBlock(config, blk.ctx.Time) {
		return errors.New("blob gas exceeds maximum")
	}
	if len(post.TxBytes) != 0 {
		var tx types.Transaction
		if err := tx.UnmarshalBinary(post.TxBytes); err != nil {
			return err
		}
		if _, err := types.Sender(types.LatestSigner(config), &tx); err != nil {
			return err
		}
	}
	evm := vm.NewEVM(blk.ctx, sdb, config, vm.Config{})
	snap := sdb.Snapshot()
	if _, err := core.ApplyMessage(evm, msg, core.NewGasPool(blk.gasLimit)); err != nil {
		sdb.RevertToSnapshot(snap)
		sdb.TakeLogs()
		return err
	}
	// The zero-value coinbase touch of go-ethereum's runner: it matters when the
	// coinbase self-destructed or received no fee.
	sdb.AddBalance(blk.ctx.Coinbase, new(uint256.Int), tracing.BalanceChangeUnspecified)
	return nil
}

// statetestMessage picks one transaction out of the template.
func statetestMessage(tx *statetestTx, post *statetestPost, baseFee *big.Int) (*core.Message, error) {
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
			auths[i] = types.SetCodeAuthorization{
				ChainID: *uint256.MustFromBig((*big.Int)(a.ChainID)),
				Address: a.Address,
				Nonce:   uint64(a.Nonce),
				V:       uint8(a.V),
				R:       *uint256.MustFromBig((*big.Int)(a.R)),
				S:       *uint256.MustFromBig((*big.Int)(a.S)),
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

func statetestBlockHash(n uint64) common.Hash {
	return common.BytesToHash(crypto.Keccak256([]byte(new(big.Int).SetUint64(n).String())))
}

func statetestRLPHash(x any) common.Hash {
	enc, err := rlp.EncodeToBytes(x)
	if err != nil {
		panic(err)
	}
	return crypto.Keccak256Hash(enc)
}

// --- post-state checks --------------------------------------------------------

func statetestNonZero(m map[common.Hash]common.Hash) map[common.Hash]common.Hash {
	out := make(map[common.Hash]common.Hash, len(m))
	for k, v := range m {
		if v != (common.Hash{}) {
			out[k] = v
		}
	}
	return out
}

func statetestCompareAccount(addr common.Address, want types.Account, nonce uint64, balance *uint256.Int, code []byte, codeHash common.Hash) error {
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
	case !bytes.Equal(code, want.Code):
		return fmt.Errorf("%s: code %x, want %x", addr, code, want.Code)
	}
	return nil
}

// statetestCheckReader reads every expected account and slot through r.
func statetestCheckReader(r state.Reader, want types.GenesisAlloc) error {
	for addr, w := range want {
		acct, ok := r.Account(addr)
		if !ok {
			return fmt.Errorf("%s: missing", addr)
		}
		if err := statetestCompareAccount(addr, w, acct.Nonce, &acct.Balance, r.Code(acct.CodeHash), acct.CodeHash); err != nil {
			return err
		}
		slots := statetestNonZero(w.Storage)
		for k, v := range w.Storage {
			if got := r.Storage(addr, k); got != v {
				return fmt.Errorf("%s: slot %x = %x, want %x", addr, k, got, v)
			}
		}
		if r.HasStorage(addr) != (len(slots) > 0) {
			return fmt.Errorf("%s: HasStorage %v, want %v", addr, r.HasStorage(addr), len(slots) > 0)
		}
	}
	return nil
}

// statetestCheckDump compares the whole flat state with the expected post state.
func statetestCheckDump(st *state.State, want types.GenesisAlloc) error {
	seen := 0
	v := st.View()
	defer v.Release()
	err := v.Dump(func(addr common.Address, acct *state.Account, code []byte, storage map[common.Hash]common.Hash) error {
		w, ok := want[addr]
		if !ok {
			return fmt.Errorf("%s: exists, want absent", addr)
		}
		seen++
		if err := statetestCompareAccount(addr, w, acct.Nonce, &acct.Balance, code, acct.CodeHash); err != nil {
			return err
		}
		slots := statetestNonZero(w.Storage)
		if len(storage) != len(slots) {
			return fmt.Errorf("%s: %d slots, want %d", addr, len(storage), len(slots))
		}
		for k, v := range slots {
			if storage[k] != v {
				return fmt.Errorf("%s: slot %x = %x, want %x", addr, k, storage[k], v)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if seen != len(want) {
		return fmt.Errorf("%d accounts, want %d", seen, len(want))
	}
	return nil
}

// statetestExplain describes how the diff differs from the expected post state,
// for failure messages.
func statetestExplain(pre, want types.GenesisAlloc, d *chain.StateDiff) string {
	// Rebuild the post state from pre + diff.
	got := make(map[common.Address]types.Account, len(pre))
	for addr, a := range pre {
		got[addr] = types.Account{Nonce: a.Nonce, Balance: a.Balance, Code: a.Code, Storage: statetestNonZero(a.Storage)}
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
			a.Storage = statetestNonZero(a.Storage)
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
		if err := statetestCompareAccount(addr, w, g.Nonce, bal, g.Code, codeHash); err != nil {
			lines = append(lines, "  "+err.Error())
		}
		ws := statetestNonZero(w.Storage)
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
