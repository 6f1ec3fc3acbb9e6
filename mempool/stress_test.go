package mempool

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// TestConcurrentStress has many goroutines adding (new nonces, gaps,
// replacements, stale nonces, duplicates) while a sequencer goroutine runs
// mini-blocks: Ready, execute, Included, sometimes Drop and SetEnv. Run it
// with -race.
func TestConcurrentStress(t *testing.T) {
	const (
		adders     = 8
		keysPer    = 80 // 640 senders: big mini-blocks take Included's parallel path
		txsPerAdd  = 400
		miniBlocks = 400
	)
	if testing.Short() {
		t.Skip("short")
	}
	p, st := newTestPool(t, Config{AccountSlots: 64, GlobalSlots: 2000, RecoverWorkers: 4}, testConfig(false))
	known := []error{ErrNonceTooLow, ErrNonceTooHigh, ErrReplaceUnderpriced, ErrAlreadyKnown, ErrAccountLimitExceeded, ErrTxPoolOverflow}

	var (
		wg      sync.WaitGroup
		done    atomic.Bool
		added   atomic.Int64
		failure = make(chan string, 16)
	)
	fail := func(msg string) {
		select {
		case failure <- msg:
		default:
		}
	}
	for w := range adders {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			keys := make([]testKey, keysPer)
			for i := range keys {
				keys[i] = newKey(t)
			}
			var batch [][]byte
			for i := range txsPerAdd {
				k := keys[rng.IntN(len(keys))]
				if i < len(keys) {
					k = keys[i] // every sender early on, for a wide first mini-block
				}
				nonce := st.Nonce(k.addr)
				switch r := rng.IntN(10); {
				case r < 6:
					if n, ok := p.PendingNonce(k.addr); ok {
						nonce = n
					}
				case r < 8:
					nonce += uint64(rng.IntN(5)) // gap or replacement
				case r < 9 && nonce > 0:
					nonce-- // stale
				}
				feeCap := int64(5 + rng.IntN(40))
				tx, err := types.SignNewTx(k.key, testSigner, &types.DynamicFeeTx{
					ChainID: testChainID, Nonce: nonce, GasTipCap: big.NewInt(int64(rng.IntN(int(feeCap))) * gwei),
					GasFeeCap: big.NewInt(feeCap * gwei), Gas: 21000, To: &recipient, Value: big.NewInt(int64(i)),
				})
				if err != nil {
					fail(err.Error())
					return
				}
				raw, _ := tx.MarshalBinary()
				batch = append(batch, raw)
				if rng.IntN(5) == 0 {
					batch = append(batch, raw) // duplicate
				}
				if len(batch) < 1+rng.IntN(8) {
					continue
				}
				txs, errs := p.DecodeBatch(batch)
				for _, err := range errs {
					if err != nil && err != ErrAlreadyKnown {
						fail("decode: " + err.Error())
					}
				}
				for _, err := range p.Add(txs) {
					if err == nil {
						added.Add(1)
						continue
					}
					ok := errors.Is(err, ErrNilTx)
					for _, k := range known {
						ok = ok || errors.Is(err, k)
					}
					if !ok {
						fail("add: " + err.Error())
					}
				}
				batch = batch[:0]
			}
		})
	}
	// Readers.
	wg.Go(func() {
		for !done.Load() {
			p.Stats()
			for _, tx := range p.Ready(20, 1_000_000) {
				if p.Get(tx.Hash) == nil {
					// May have been included meanwhile; fine.
					continue
				}
				p.PendingNonce(tx.Sender)
			}
			time.Sleep(50 * time.Microsecond)
		}
	})

	// Sequencer.
	rng := rand.New(rand.NewPCG(99, 1))
	executed, largest := 0, 0
	for mb := 0; mb < miniBlocks; mb++ {
		size := 50
		if mb%200 == 0 {
			// Let the pool fill up, then take a big mini-block.
			for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				if pend, _ := p.Stats(); pend >= 600 {
					break
				}
			}
			size = 2000
		}
		ready := p.Ready(size, 300_000_000)
		seen := make(map[common.Hash]bool)
		next := make(map[common.Address]uint64)
		var included []common.Hash
		for _, tx := range ready {
			if seen[tx.Hash] {
				t.Fatalf("tx returned twice")
			}
			seen[tx.Hash] = true
			want, ok := next[tx.Sender]
			if !ok {
				want = st.Nonce(tx.Sender)
			} else if want == ^uint64(0) {
				continue // dropped earlier in this mini-block
			}
			if tx.Nonce() != want {
				t.Fatalf("mini-block %d: sender %v nonce %d, want %d", mb, tx.Sender, tx.Nonce(), want)
			}
			if rng.IntN(40) == 0 {
				p.Drop(tx.Hash, errors.New("refused"))
				next[tx.Sender] = ^uint64(0) // nothing more from this sender
				continue
			}
			next[tx.Sender] = want + 1
			included = append(included, tx.Hash)
		}
		for addr, n := range next {
			if n != ^uint64(0) {
				st.setNonce(addr, n)
			}
		}
		p.Included(included)
		executed += len(included)
		largest = max(largest, len(included))
		if mb%25 == 0 {
			env := p.Env()
			env.BaseFee = big.NewInt(int64(1+rng.IntN(30)) * gwei)
			env.BlockNumber++
			p.SetEnv(env)
		}
		select {
		case msg := <-failure:
			t.Fatal(msg)
		default:
		}
		time.Sleep(200 * time.Microsecond)
	}
	done.Store(true)
	wg.Wait()
	select {
	case msg := <-failure:
		t.Fatal(msg)
	default:
	}
	env := p.Env()
	env.BaseFee = big.NewInt(gwei)
	p.SetEnv(env)
	checkInvariants(t, p)
	pend, queued := p.Stats()
	t.Logf("added %d, executed %d (largest mini-block %d), left %d pending / %d queued", added.Load(), executed, largest, pend, queued)
	if executed == 0 || added.Load() == 0 {
		t.Fatal("stress test did nothing")
	}
}
