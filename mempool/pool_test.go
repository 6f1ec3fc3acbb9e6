package mempool

import (
	"errors"
	"math"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/holiman/uint256"
)

func TestReplacement(t *testing.T) {
	p, st := newTestPool(t, Config{}, testConfig(false))
	k := newKey(t)
	orig := dyn(t, k, 0, 100, 10)
	mustAdd(t, p, orig)

	// Fee cap and tip in wei; the original has 100 gwei / 10 gwei.
	for _, tc := range []struct {
		name        string
		feeCap, tip int64
	}{
		{"same price", 100 * gwei, 10 * gwei},
		{"9% bump", 109 * gwei, 10_900_000_000},
		{"just below 10%", 110*gwei - 1, 11*gwei - 1},
		{"10% fee cap only", 110 * gwei, 10 * gwei},
		{"10% tip only", 100 * gwei, 11 * gwei},
		{"10% fee cap, 9% tip", 110 * gwei, 10_900_000_000},
		{"9% fee cap, 10% tip", 109 * gwei, 11 * gwei},
		{"lower", 90 * gwei, 9 * gwei},
	} {
		tx := sign(t, k, &types.DynamicFeeTx{ChainID: testChainID, GasTipCap: big.NewInt(tc.tip), GasFeeCap: big.NewInt(tc.feeCap), Gas: 21000, To: &recipient, Value: big.NewInt(2)})
		if err := addTx(t, p, tx); !errors.Is(err, ErrReplaceUnderpriced) {
			t.Fatalf("%s: error %v, want %v", tc.name, err, ErrReplaceUnderpriced)
		}
	}
	if p.Get(orig.Hash()) == nil {
		t.Fatal("original gone")
	}
	// Exactly 10% on both replaces.
	repl := dyn(t, k, 0, 110, 11)
	if err := addTx(t, p, repl); err != nil {
		t.Fatalf("10%% bump rejected: %v", err)
	}
	if p.Get(orig.Hash()) != nil || p.Get(repl.Hash()) == nil {
		t.Fatal("replacement not done")
	}
	if pend, queued := p.Stats(); pend != 1 || queued != 0 {
		t.Fatalf("stats %d/%d", pend, queued)
	}
	if r := p.Ready(10, math.MaxUint64); len(r) != 1 || r[0].Hash != repl.Hash() {
		t.Fatal("Ready doesn't return the replacement")
	}
	checkInvariants(t, p)

	// The bump must be affordable: balance covers the old cost, not the new.
	k2 := newKey(t)
	st.setBalance(k2.addr, uint256.NewInt(21000*100*gwei+1))
	mustAdd(t, p, dyn(t, k2, 0, 100, 10))
	if err := addTx(t, p, dyn(t, k2, 0, 200, 20)); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("unaffordable bump: %v", err)
	}

	// If the replaced version is what got executed, Included still finds the
	// sender (tombstone) and drops the replacement as stale.
	st.setNonce(k.addr, 1)
	p.Included([]common.Hash{orig.Hash()})
	if p.Get(repl.Hash()) != nil {
		t.Fatal("stale replacement kept")
	}
	checkInvariants(t, p)
}

func TestReplacementCustomBump(t *testing.T) {
	p, _ := newTestPool(t, Config{PriceBump: 50}, testConfig(false))
	k := newKey(t)
	mustAdd(t, p, dyn(t, k, 0, 100, 10))
	if err := addTx(t, p, dyn(t, k, 0, 149, 15)); !errors.Is(err, ErrReplaceUnderpriced) {
		t.Fatal(err)
	}
	if err := addTx(t, p, dyn(t, k, 0, 150, 15)); err != nil {
		t.Fatal(err)
	}
}

func TestNonceGaps(t *testing.T) {
	p, st := newTestPool(t, Config{}, testConfig(false))
	k := newKey(t)
	st.setNonce(k.addr, 3)
	if n, ok := p.PendingNonce(k.addr); ok || n != 0 {
		t.Fatal("unknown sender has a pending nonce")
	}
	mustAdd(t, p, dyn(t, k, 3, 10, 1), dyn(t, k, 5, 10, 1), dyn(t, k, 6, 10, 1))
	if pend, queued := p.Stats(); pend != 1 || queued != 2 {
		t.Fatalf("stats %d/%d, want 1/2", pend, queued)
	}
	if n, ok := p.PendingNonce(k.addr); !ok || n != 4 {
		t.Fatalf("pending nonce %d", n)
	}
	r := p.Ready(100, math.MaxUint64)
	if len(r) != 1 || r[0].Nonce() != 3 {
		t.Fatalf("ready %v", nonces(r))
	}
	// Filling the gap promotes the rest.
	mustAdd(t, p, dyn(t, k, 4, 10, 1))
	if pend, queued := p.Stats(); pend != 4 || queued != 0 {
		t.Fatalf("stats %d/%d, want 4/0", pend, queued)
	}
	if n, _ := p.PendingNonce(k.addr); n != 7 {
		t.Fatalf("pending nonce %d", n)
	}
	if got := nonces(p.Ready(100, math.MaxUint64)); !equal(got, []uint64{3, 4, 5, 6}) {
		t.Fatalf("ready %v", got)
	}
	checkInvariants(t, p)
}

func nonces(txs []*Tx) []uint64 {
	var out []uint64
	for _, t := range txs {
		out = append(out, t.Nonce())
	}
	return out
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReadyOrdering(t *testing.T) {
	p, _ := newTestPool(t, Config{}, testConfig(false)) // base fee 1 gwei
	a, b, c, d := newKey(t), newKey(t), newKey(t), newKey(t)
	// a: tips 5, 1, 9 (nonce order wins over tip within a sender)
	mustAdd(t, p, dyn(t, a, 0, 100, 5), dyn(t, a, 1, 100, 1), dyn(t, a, 2, 100, 9))
	// b: tip 3, 3
	mustAdd(t, p, dyn(t, b, 0, 100, 3), dyn(t, b, 1, 100, 3))
	// c: tip 5 but fee cap 5 -> effective tip 4
	mustAdd(t, p, dyn(t, c, 0, 5, 5))
	// d: tip 3 like b, arrived later
	mustAdd(t, p, dyn(t, d, 0, 100, 3))

	type ref struct {
		who   common.Address
		nonce uint64
	}
	want := []ref{{a.addr, 0}, {c.addr, 0}, {b.addr, 0}, {b.addr, 1}, {d.addr, 0}, {a.addr, 1}, {a.addr, 2}}
	got := p.Ready(100, math.MaxUint64)
	if len(got) != len(want) {
		t.Fatalf("ready returned %d, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Sender != w.who || got[i].Nonce() != w.nonce {
			t.Fatalf("position %d: %v/%d, want %v/%d", i, got[i].Sender, got[i].Nonce(), w.who, w.nonce)
		}
	}
	// Ready doesn't remove.
	if again := p.Ready(100, math.MaxUint64); len(again) != len(want) {
		t.Fatal("Ready removed transactions")
	}
	// max.
	if r := p.Ready(3, math.MaxUint64); len(r) != 3 || r[2].Sender != b.addr {
		t.Fatalf("max 3: %d", len(r))
	}
	// gas: 3 transfers fit.
	if r := p.Ready(100, 3*21000+20000); len(r) != 3 {
		t.Fatalf("gas-limited: %d", len(r))
	}
	if r := p.Ready(100, 20999); r != nil {
		t.Fatal("nothing fits")
	}
	if r := p.Ready(0, math.MaxUint64); r != nil {
		t.Fatal("max 0")
	}
	checkInvariants(t, p)
}

func TestReadyGasSkipsSender(t *testing.T) {
	p, _ := newTestPool(t, Config{}, testConfig(false))
	heavy, small := newKey(t), newKey(t)
	heavyTx := sign(t, heavy, &types.DynamicFeeTx{ChainID: testChainID, GasTipCap: big1(10), GasFeeCap: big1(100), Gas: 1_000_000, To: &recipient})
	mustAdd(t, p, heavyTx, dyn(t, heavy, 1, 100, 10))
	mustAdd(t, p, dyn(t, small, 0, 100, 1), dyn(t, small, 1, 100, 1))
	// The big one doesn't fit: its sender is skipped entirely, the other goes.
	got := p.Ready(10, 500_000)
	if len(got) != 2 || got[0].Sender != small.addr || got[1].Sender != small.addr {
		t.Fatalf("ready %v", nonces(got))
	}
}

func big1(gweis int64) *big.Int { return big.NewInt(gweis * gwei) }

func TestIncluded(t *testing.T) {
	p, st := newTestPool(t, Config{}, testConfig(false))
	a, b := newKey(t), newKey(t)
	var atxs []*types.Transaction
	for n := range uint64(5) {
		atxs = append(atxs, dyn(t, a, n, 10, 2))
	}
	mustAdd(t, p, atxs...)
	mustAdd(t, p, dyn(t, b, 0, 10, 1), dyn(t, b, 1, 10, 1), dyn(t, b, 3, 10, 1))

	r := p.Ready(3, math.MaxUint64)
	if got := nonces(r); !equal(got, []uint64{0, 1, 2}) || r[0].Sender != a.addr {
		t.Fatalf("ready %v", got)
	}
	// Execute them.
	st.setNonce(a.addr, 3)
	p.Included(hashesOf(r))
	for _, h := range hashesOf(r) {
		if p.Get(h) != nil {
			t.Fatal("included tx still pooled")
		}
	}
	if pend, queued := p.Stats(); pend != 4 || queued != 1 {
		t.Fatalf("stats %d/%d, want 4/1", pend, queued)
	}
	r = p.Ready(10, math.MaxUint64)
	if len(r) != 4 || r[0].Sender != a.addr || r[0].Nonce() != 3 {
		t.Fatalf("after inclusion: %v", nonces(r))
	}
	checkInvariants(t, p)

	// b's nonce moves by other means (a deposit): Refresh drops what's stale.
	st.setNonce(b.addr, 2)
	p.Refresh(b.addr)
	if n, _ := p.PendingNonce(b.addr); n != 2 {
		t.Fatalf("b pending nonce %d", n)
	}
	if pend, queued := p.Stats(); pend != 2 || queued != 1 {
		t.Fatalf("stats %d/%d, want 2/1", pend, queued)
	}
	// An Add also notices the state moved: nonce 3 is now contiguous.
	st.setNonce(b.addr, 3)
	if err := addTx(t, p, dyn(t, b, 2, 10, 1)); !errors.Is(err, ErrNonceTooLow) {
		t.Fatalf("stale add: %v", err)
	}
	if pend, queued := p.Stats(); pend != 3 || queued != 0 {
		t.Fatalf("stats %d/%d, want 3/0", pend, queued)
	}
	checkInvariants(t, p)

	// Balance drop: transactions whose cost exceeds it go, later nonces queue.
	st.setBalance(a.addr, uint256.NewInt(21000*10*gwei)) // each costs 1 wei more
	st.setNonce(a.addr, 4)
	p.Included([]common.Hash{atxs[3].Hash()})
	if p.Get(atxs[4].Hash()) != nil {
		t.Fatal("unaffordable tx kept")
	}
	if pend, queued := p.Stats(); pend != 1 || queued != 0 {
		t.Fatalf("stats %d/%d, want 1/0", pend, queued)
	}
	// Everything executed: accounts vanish.
	st.setNonce(a.addr, 5)
	st.setNonce(b.addr, 4)
	p.Included(hashesOf(p.Ready(10, math.MaxUint64)))
	if pend, queued := p.Stats(); pend != 0 || queued != 0 {
		t.Fatalf("stats %d/%d, want empty", pend, queued)
	}
	if _, ok := p.PendingNonce(a.addr); ok {
		t.Fatal("empty account kept")
	}
	checkInvariants(t, p)
}

func TestDrop(t *testing.T) {
	p, _ := newTestPool(t, Config{}, testConfig(false))
	k := newKey(t)
	txs := []*types.Transaction{dyn(t, k, 0, 10, 1), dyn(t, k, 1, 10, 1), dyn(t, k, 2, 10, 1)}
	mustAdd(t, p, txs...)
	r := p.Ready(10, math.MaxUint64) // readers may hold this while we drop
	p.Drop(txs[1].Hash(), errors.New("execution refused"))
	if got := nonces(p.Ready(10, math.MaxUint64)); !equal(got, []uint64{0}) {
		t.Fatalf("ready after drop %v", got)
	}
	if got := nonces(r); !equal(got, []uint64{0, 1, 2}) {
		t.Fatalf("earlier Ready result changed: %v", got)
	}
	if pend, queued := p.Stats(); pend != 1 || queued != 1 {
		t.Fatalf("stats %d/%d", pend, queued)
	}
	p.Drop(common.Hash{}, nil) // unknown: no-op
	// Resubmitting the dropped nonce restores the run.
	mustAdd(t, p, dyn(t, k, 1, 20, 2))
	if got := nonces(p.Ready(10, math.MaxUint64)); !equal(got, []uint64{0, 1, 2}) {
		t.Fatalf("ready %v", got)
	}
	p.Drop(txs[0].Hash(), nil)
	if r := p.Ready(10, math.MaxUint64); len(r) != 0 {
		t.Fatal("ready after head drop")
	}
	checkInvariants(t, p)
}

func TestBaseFeeChange(t *testing.T) {
	p, _ := newTestPool(t, Config{}, testConfig(false))
	a, b := newKey(t), newKey(t)
	// Below the current base fee: accepted but queued.
	low := newKey(t)
	env := p.Env()
	env.BaseFee = big1(20)
	p.SetEnv(env)
	mustAdd(t, p, dyn(t, low, 0, 10, 1))
	if pend, queued := p.Stats(); pend != 0 || queued != 1 {
		t.Fatalf("stats %d/%d", pend, queued)
	}
	env.BaseFee = big1(1)
	p.SetEnv(env)

	mustAdd(t, p, dyn(t, a, 0, 30, 1), dyn(t, a, 1, 10, 1), dyn(t, a, 2, 30, 1))
	mustAdd(t, p, dyn(t, b, 0, 25, 20))
	if pend, _ := p.Stats(); pend != 5 {
		t.Fatalf("pending %d", pend)
	}
	// b leads on tip (20 vs 1).
	if r := p.Ready(10, math.MaxUint64); len(r) != 5 || r[0].Sender != b.addr {
		t.Fatalf("ready %v", nonces(r))
	}
	// Base fee 20: b's effective tip drops to 5, a's stays 1; a's nonce 1
	// (cap 10) and low's tx stop being executable, nothing is dropped.
	env.BaseFee = big1(20)
	p.SetEnv(env)
	if pend, queued := p.Stats(); pend != 2 || queued != 3 {
		t.Fatalf("stats %d/%d, want 2/3", pend, queued)
	}
	r := p.Ready(10, math.MaxUint64)
	if len(r) != 2 || r[0].Sender != b.addr || r[1].Sender != a.addr || r[1].Nonce() != 0 {
		t.Fatalf("ready %v", nonces(r))
	}
	checkInvariants(t, p)
	// Base fee 26: b's cap 25 is below it; only a's nonce 0 remains.
	env.BaseFee = big1(26)
	p.SetEnv(env)
	if r := p.Ready(10, math.MaxUint64); len(r) != 1 || r[0].Sender != a.addr {
		t.Fatalf("ready %v", nonces(r))
	}
	// Ranking flips with the base fee: at 21, b has effective tip 4 and a 1;
	// give a new sender tip 3 / cap 100 to sit between them.
	env.BaseFee = big1(21)
	p.SetEnv(env)
	m := newKey(t)
	mustAdd(t, p, dyn(t, m, 0, 100, 3))
	r = p.Ready(10, math.MaxUint64)
	if len(r) != 3 || r[0].Sender != b.addr || r[1].Sender != m.addr || r[2].Sender != a.addr {
		t.Fatalf("ready order wrong")
	}
	// Back down: everything is executable again.
	env.BaseFee = big1(1)
	p.SetEnv(env)
	if pend, queued := p.Stats(); pend != 6 || queued != 0 {
		t.Fatalf("stats %d/%d, want 6/0", pend, queued)
	}
	checkInvariants(t, p)
}

func TestLimits(t *testing.T) {
	p, _ := newTestPool(t, Config{AccountSlots: 3, GlobalSlots: 5}, testConfig(false))
	a, b := newKey(t), newKey(t)
	mustAdd(t, p, dyn(t, a, 0, 10, 1), dyn(t, a, 1, 10, 1), dyn(t, a, 5, 10, 1))
	if err := addTx(t, p, dyn(t, a, 2, 10, 1)); !errors.Is(err, ErrAccountLimitExceeded) {
		t.Fatalf("account limit: %v", err)
	}
	// Replacements don't take a slot.
	mustAdd(t, p, dyn(t, a, 1, 20, 2))
	mustAdd(t, p, dyn(t, b, 0, 10, 1), dyn(t, b, 1, 10, 1))
	if err := addTx(t, p, dyn(t, b, 2, 10, 1)); !errors.Is(err, ErrTxPoolOverflow) {
		t.Fatalf("global limit: %v", err)
	}
	mustAdd(t, p, dyn(t, b, 1, 20, 2)) // replacement while full
	// Room again after inclusion.
	p.Drop(p.Ready(1, math.MaxUint64)[0].Hash, nil)
	mustAdd(t, p, dyn(t, b, 2, 10, 1))
	checkInvariants(t, p)
}

func TestSetEnvForks(t *testing.T) {
	// Fork gating follows the environment: 7702 becomes valid at Prague.
	chain := cancunConfig()
	prague := uint64(100)
	chain.PragueTime = &prague
	p, _ := newTestPool(t, Config{}, chain)
	k := newKey(t)
	auth, err := types.SignSetCode(k.key, types.SetCodeAuthorization{ChainID: *uint256.MustFromBig(testChainID), Address: recipient})
	if err != nil {
		t.Fatal(err)
	}
	tx := sign(t, k, &types.SetCodeTx{ChainID: uint256.MustFromBig(testChainID), GasTipCap: uint256.NewInt(gwei), GasFeeCap: uint256.NewInt(10 * gwei),
		Gas: 100_000, To: recipient, Value: new(uint256.Int), AuthList: []types.SetCodeAuthorization{auth}})
	if err := addTx(t, p, tx); !errors.Is(err, ErrTxTypeNotSupported) {
		t.Fatalf("pre-Prague: %v", err)
	}
	env := p.Env()
	env.Time = 100
	p.SetEnv(env)
	if err := addTx(t, p, tx); err != nil {
		t.Fatalf("Prague: %v", err)
	}
}

func TestIncludedLarge(t *testing.T) {
	// Enough senders for Included to go parallel.
	p, st := newTestPool(t, Config{RecoverWorkers: 4}, testConfig(false))
	addrs := fillPool(t, p, 3*parallelMinItems, 3)
	r := p.Ready(math.MaxInt, math.MaxUint64)
	if len(r) != 9*parallelMinItems {
		t.Fatalf("ready %d", len(r))
	}
	var included []common.Hash
	for _, tx := range r {
		if tx.Nonce() < 2 {
			included = append(included, tx.Hash)
		}
	}
	for _, addr := range addrs {
		st.setNonce(addr, 2)
	}
	p.Included(included)
	if pend, queued := p.Stats(); pend != len(addrs) || queued != 0 {
		t.Fatalf("stats %d/%d", pend, queued)
	}
	for _, h := range included {
		if p.Get(h) != nil {
			t.Fatal("included tx kept")
		}
	}
	checkInvariants(t, p)
}
