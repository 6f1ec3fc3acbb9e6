package mempool

import (
	"crypto/ecdsa"
	"math/big"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"
)

const gwei = 1_000_000_000

var testChainID = big.NewInt(167_001)

// testConfig returns a chain config with everything up to Prague active at
// genesis, and Osaka too if osaka is set. Optimism stays nil.
func testConfig(osaka bool) *params.ChainConfig {
	c := *params.MergedTestChainConfig
	c.ChainID = testChainID
	c.Optimism = nil
	if !osaka {
		c.OsakaTime = nil
	}
	return &c
}

// cancunConfig has Prague off, for the 7702 fork gate.
func cancunConfig() *params.ChainConfig {
	c := testConfig(false)
	c.PragueTime = nil
	return c
}

func testEnv(cfg *params.ChainConfig) Env {
	return Env{ChainConfig: cfg, BlockNumber: 1, Time: 10, BaseFee: big.NewInt(1 * gwei), GasLimit: 30_000_000}
}

// testState is a State backed by maps; unknown accounts have defBalance.
type testState struct {
	mu         sync.RWMutex
	nonces     map[common.Address]uint64
	balances   map[common.Address]*uint256.Int
	defBalance *uint256.Int
}

func newTestState() *testState {
	return &testState{
		nonces:     make(map[common.Address]uint64),
		balances:   make(map[common.Address]*uint256.Int),
		defBalance: new(uint256.Int).Mul(uint256.NewInt(1_000_000), uint256.NewInt(1e18)),
	}
}

func (s *testState) Nonce(a common.Address) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nonces[a]
}

func (s *testState) Balance(a common.Address) *uint256.Int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if b, ok := s.balances[a]; ok {
		return new(uint256.Int).Set(b)
	}
	return new(uint256.Int).Set(s.defBalance)
}

func (s *testState) setNonce(a common.Address, n uint64) {
	s.mu.Lock()
	s.nonces[a] = n
	s.mu.Unlock()
}

func (s *testState) setBalance(a common.Address, b *uint256.Int) {
	s.mu.Lock()
	s.balances[a] = b
	s.mu.Unlock()
}

type testKey struct {
	key  *ecdsa.PrivateKey
	addr common.Address
}

func newKey(t testing.TB) testKey {
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return testKey{k, crypto.PubkeyToAddress(k.PublicKey)}
}

var (
	testSigner = types.LatestSignerForChainID(testChainID)
	recipient  = common.HexToAddress("0x00000000000000000000000000000000000000aa")
)

func sign(t testing.TB, k testKey, data types.TxData) *types.Transaction {
	t.Helper()
	tx, err := types.SignNewTx(k.key, testSigner, data)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// dyn is a signed EIP-1559 transfer with fee cap and tip in gwei.
func dyn(t testing.TB, k testKey, nonce uint64, feeCap, tip int64) *types.Transaction {
	return sign(t, k, &types.DynamicFeeTx{
		ChainID: testChainID, Nonce: nonce, GasTipCap: big.NewInt(tip * gwei), GasFeeCap: big.NewInt(feeCap * gwei),
		Gas: 21000, To: &recipient, Value: big.NewInt(1),
	})
}

func encode(t testing.TB, tx *types.Transaction) []byte {
	t.Helper()
	raw, err := tx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func newTestPool(t testing.TB, cfg Config, chain *params.ChainConfig) (*Pool, *testState) {
	t.Helper()
	st := newTestState()
	p, err := New(cfg, testEnv(chain), st)
	if err != nil {
		t.Fatal(err)
	}
	return p, st
}

// addRaw runs the RPC path: DecodeBatch then Add.
func addRaw(p *Pool, raw []byte) error {
	txs, errs := p.DecodeBatch([][]byte{raw})
	if errs[0] != nil {
		return errs[0]
	}
	return p.Add(txs)[0]
}

func addTx(t testing.TB, p *Pool, tx *types.Transaction) error {
	t.Helper()
	return addRaw(p, encode(t, tx))
}

func mustAdd(t testing.TB, p *Pool, txs ...*types.Transaction) {
	t.Helper()
	for _, tx := range txs {
		if err := addTx(t, p, tx); err != nil {
			t.Fatalf("add nonce %d: %v", tx.Nonce(), err)
		}
	}
}

func hashesOf(txs []*Tx) []common.Hash {
	hs := make([]common.Hash, len(txs))
	for i, t := range txs {
		hs[i] = t.Hash
	}
	return hs
}

// checkInvariants verifies the pool's internal consistency.
func checkInvariants(t testing.TB, p *Pool) {
	t.Helper()
	var total, pending int
	env := p.env.Load()
	inHeap := 0
	for i := range p.senders {
		sh := &p.senders[i]
		sh.mu.Lock()
		for addr, a := range sh.accounts {
			if len(a.list) == 0 {
				t.Errorf("empty account %v kept", addr)
			}
			var spent uint256.Int
			for j, tx := range a.list {
				if j > 0 && a.list[j-1].nonce >= tx.nonce {
					t.Errorf("account %v not sorted", addr)
				}
				if tx.nonce < a.base {
					t.Errorf("account %v: stale nonce %d < %d", addr, tx.nonce, a.base)
				}
				if p.Get(tx.Hash) != tx {
					t.Errorf("tx %v not indexed", tx.Hash)
				}
				spent.Add(&spent, &tx.cost)
			}
			if !spent.Eq(&a.spent) {
				t.Errorf("account %v: spent %v, want %v", addr, &a.spent, &spent)
			}
			c := 0
			for c < len(a.list) && a.list[c].nonce == a.base+uint64(c) {
				c++
			}
			r := 0
			for r < c && !a.list[r].feeCap.Lt(&env.baseFee) {
				r++
			}
			if a.contig != c || a.ready != r {
				t.Errorf("account %v: contig/ready %d/%d, want %d/%d", addr, a.contig, a.ready, c, r)
			}
			run := a.run.Load()
			if (run == nil) != (r == 0) || (run != nil && len(*run) != r) {
				t.Errorf("account %v: bad published run", addr)
			}
			p.readyMu.Lock()
			if (a.heapIdx >= 0) != (r > 0) {
				t.Errorf("account %v: heap membership %v with ready %d", addr, a.heapIdx, r)
			}
			if a.heapIdx >= 0 {
				inHeap++
				if it, key := p.heap.items[a.heapIdx], p.heap.keys[a.heapIdx]; it.a != a || key != wantKey(a.list[0], &env.baseFee) || it.head != a.list[0] || it.runLen != a.ready || it.gas != it.head.gas || it.feeCap != tip64(&it.head.feeCap) {
					t.Errorf("account %v: wrong heap index", addr)
				}
			}
			p.readyMu.Unlock()
			total += len(a.list)
			pending += r
		}
		sh.mu.Unlock()
	}
	p.readyMu.Lock()
	if inHeap != len(p.heap.items) || len(p.heap.keys) != len(p.heap.items) {
		t.Errorf("heap holds %d accounts, %d have ready txs", len(p.heap.items), inHeap)
	}
	for i := 1; i < len(p.heap.items); i++ {
		if p.heap.less(i, (i-1)/2) {
			t.Errorf("heap property violated at %d", i)
		}
	}
	p.readyMu.Unlock()
	indexed := 0
	for i := range p.hashes {
		p.hashes[i].mu.RLock()
		indexed += len(p.hashes[i].txs)
		p.hashes[i].mu.RUnlock()
	}
	gp, gq := p.Stats()
	if gp != pending || gp+gq != total || indexed != total {
		t.Errorf("stats %d/%d, indexed %d; want %d pending of %d", gp, gq, indexed, pending, total)
	}
}

func wantKey(head *Tx, baseFee *uint256.Int) heapKey {
	var tip uint256.Int
	effTip(&tip, head, baseFee)
	return heapKey{tip: tip64(&tip), seq: head.seq}
}
