package state

import (
	"math/rand"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/internal/memstat"
)

// BenchmarkRetainedBlock measures what one retained block state costs: blocks
// of 10,000 ETH transfers between random accounts of a funded state
// (KESTREL_RETAIN_ACCOUNTS, default 1,000,000) are folded with every root
// retained, and the live heap's growth per block is reported as MB/block (the
// nodes each block replaced, which its root keeps). b.N is the number of
// blocks; run it with -benchtime 40x or so.
//
//	go test -run '^$' -bench RetainedBlock -benchtime 40x ./core/state
func BenchmarkRetainedBlock(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("KESTREL_RETAIN_ACCOUNTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 2 {
			b.Fatalf("KESTREL_RETAIN_ACCOUNTS=%q: want an account count", s)
		}
	}
	const transfers = 10_000
	addrs := make([]common.Address, n)
	nonce := make([]uint64, n)
	bal := make([]uint64, n)
	genesis := &chain.StateDiff{}
	for i := range addrs {
		addrs[i] = common.BytesToAddress([]byte{0x10, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
		bal[i] = 1e18
		ad := chain.AccountDiff{Address: addrs[i], CodeHash: types.EmptyCodeHash}
		ad.Balance.SetUint64(bal[i])
		genesis.Accounts = append(genesis.Accounts, ad)
	}
	genesis.Sort()
	m := NewMerkle(b.N + 1)
	if _, err := m.Apply(0, genesis); err != nil {
		b.Fatal(err)
	}
	genesis = nil
	rnd := rand.New(rand.NewSource(1))
	before := memstat.LiveHeap()
	b.ResetTimer()
	for blk := 1; blk <= b.N; blk++ {
		touched := map[int]bool{}
		for range transfers {
			from, to := rnd.Intn(n), rnd.Intn(n)
			nonce[from]++
			bal[from] -= 21_000 * 1e9
			bal[to]++
			touched[from], touched[to] = true, true
		}
		d := &chain.StateDiff{}
		for i := range touched {
			ad := chain.AccountDiff{Address: addrs[i], Nonce: nonce[i], CodeHash: types.EmptyCodeHash}
			ad.Balance.SetUint64(bal[i])
			d.Accounts = append(d.Accounts, ad)
		}
		d.Sort()
		if _, err := m.Apply(uint64(blk), d); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(int64(memstat.LiveHeap())-int64(before))/1e6/float64(b.N), "MB/block")
	runtime.KeepAlive(m)
}
