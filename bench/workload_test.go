package bench

import (
	"bytes"
	"context"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/kestrel-l2/kestrel/contracts"
	"github.com/kestrel-l2/kestrel/core/exec"
	"github.com/kestrel-l2/kestrel/core/state"
)

// gethAndSequential prepares w's throughput transactions in blocks of
// blockTxs, runs them through go-ethereum (with its state roots) and Kestrel's
// sequential executor, and checks that their receipts agree.
func gethAndSequential(t *testing.T, w *Workload, blockTxs int) (in *engineInput, geth, seq *engineOutput) {
	t.Helper()
	in, err := prepareEngine(w, blockTxs)
	if err != nil {
		t.Fatal(err)
	}
	if geth, err = runGeth(in, "", true); err != nil {
		t.Fatal(err)
	}
	if seq, err = runKestrel(context.Background(), in, exec.Sequential{}, ""); err != nil {
		t.Fatal(err)
	}
	if err := sameReceipts(geth.receipts, seq.results); err != nil {
		t.Fatal(err)
	}
	return in, geth, seq
}

// engineCompare runs w's throughput transactions in blocks of blockTxs through
// go-ethereum, Kestrel's sequential executor and its parallel executor (auto
// and forced Block-STM), checks that they agree as RunEngine does, and returns
// go-ethereum's run and Kestrel's state after the last block.
func engineCompare(t *testing.T, w *Workload, blockTxs int) (*engineOutput, *state.View) {
	t.Helper()
	in, geth, seq := gethAndSequential(t, w, blockTxs)
	for _, cfg := range []exec.ParallelConfig{{}, {Mode: exec.ModeParallel}} {
		par, err := runParallel(context.Background(), in, cfg, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := sameResults(seq.results, par.results); err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
	}
	pre, post, err := kestrelRoot(in, seq.results)
	if err != nil || pre != geth.preRoot || post != geth.root {
		t.Fatalf("roots: kestrel %s %s, geth %s %s (%v)", pre, post, geth.preRoot, geth.root, err)
	}
	st := state.New()
	st.Commit(1, in.alloc)
	for b, res := range seq.results {
		st.Commit(uint64(b+2), res.Diff)
	}
	return geth, st.Head()
}

// checkGas fails when a receipt used more than limit*9/10 (every kind's gas
// limit keeps a tenth as headroom) and returns the largest gas used and the
// mean.
func checkGas(t *testing.T, out *engineOutput, limit uint64) (maxGas, mean uint64) {
	t.Helper()
	for _, r := range out.receipts {
		maxGas = max(maxGas, r.GasUsed)
	}
	if maxGas > limit*9/10 {
		t.Fatalf("a transaction used %d gas, limit %d: too little headroom", maxGas, limit)
	}
	return maxGas, out.gas / uint64(len(out.receipts))
}

func slotWord(n uint64) common.Hash { return common.BigToHash(new(big.Int).SetUint64(n)) }

// TestEngineSwaps: swaps on the hot pool and seven cold pools run alike in
// every engine, and every pool ends at the reserves (and token balances) the
// generator tracked, so every swap got exactly its minimum output.
func TestEngineSwaps(t *testing.T) {
	cfg := EngineWorkloadConfig(KindSwaps, 90, 30, 11)
	cfg.ColdPools = 7
	w, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	geth, v := engineCompare(t, w, 30)
	maxGas, mean := checkGas(t, geth, PoolSwapGas)
	t.Logf("swaps: %d gas per swap on average, at most %d (limit %d)", mean, maxGas, PoolSwapGas)
	perPool := map[common.Address]int{}
	for _, tx := range w.Throughput() {
		perPool[tx.Pool]++
	}
	want := w.PoolReserves(w.Throughput())
	if len(want) != 8 || perPool[w.Pool] != 45 {
		t.Fatalf("%d pools, %d hot swaps", len(want), perPool[w.Pool])
	}
	for _, p := range w.Pools() {
		if perPool[p] == 0 {
			t.Fatalf("no swap on pool %s", p)
		}
		r := want[p]
		if r[0].Cmp(PoolLiquidity) == 0 {
			t.Fatalf("pool %s: reserves unchanged", p)
		}
		got0 := v.Storage(p, slotWord(contracts.PoolSlotReserve0)).Big()
		got1 := v.Storage(p, slotWord(contracts.PoolSlotReserve1)).Big()
		if got0.Cmp(r[0]) != 0 || got1.Cmp(r[1]) != 0 {
			t.Fatalf("pool %s: reserves %v %v, generator %v %v", p, got0, got1, r[0], r[1])
		}
		bal0 := v.Storage(w.Token0, TokenBalanceSlot(p)).Big()
		bal1 := v.Storage(w.Token1, TokenBalanceSlot(p)).Big()
		if bal0.Cmp(r[0]) != 0 || bal1.Cmp(r[1]) != 0 {
			t.Fatalf("pool %s: balances %v %v, reserves %v %v", p, bal0, bal1, r[0], r[1])
		}
	}
}

// TestEngineNFT: mints run alike in every engine; every recipient owns the id
// the generator gave it and holds one token.
func TestEngineNFT(t *testing.T) {
	w, err := Generate(EngineWorkloadConfig(KindNFT, 90, 30, 12))
	if err != nil {
		t.Fatal(err)
	}
	geth, v := engineCompare(t, w, 30)
	maxGas, mean := checkGas(t, geth, NFTMintGas)
	t.Logf("nft: %d gas per mint on average, at most %d (limit %d)", mean, maxGas, NFTMintGas)
	txs := w.Throughput()
	for i, tx := range txs {
		if tx.Amount.Int64() != int64(i) {
			t.Fatalf("mint %d: id %v", i, tx.Amount)
		}
		to := w.Recipients[tx.To]
		if got := v.Storage(w.NFT, contracts.NFTOwnerSlot(tx.Amount)); common.BytesToAddress(got[:]) != to {
			t.Fatalf("id %v owned by %x, want %s", tx.Amount, got, to)
		}
		if got := v.Storage(w.NFT, contracts.NFTBalanceSlot(to)).Big(); got.Int64() != 1 {
			t.Fatalf("%s holds %v tokens", to, got)
		}
	}
	if got := v.Storage(w.NFT, slotWord(contracts.NFTSlotNextID)).Big(); got.Int64() != int64(len(txs)) {
		t.Fatalf("nextId %v after %d mints", got, len(txs))
	}
}

// TestEngineDeploy: deployments run alike in every engine; each creates the
// ERC-20's runtime code at the sender's CREATE address, with the supply held by
// the deployer.
func TestEngineDeploy(t *testing.T) {
	w, err := Generate(EngineWorkloadConfig(KindDeploy, 60, 30, 13))
	if err != nil {
		t.Fatal(err)
	}
	geth, v := engineCompare(t, w, 30)
	maxGas, mean := checkGas(t, geth, DeployGas)
	t.Logf("deploy: %d gas per deployment on average, at most %d (limit %d)", mean, maxGas, DeployGas)
	runtime := contracts.ERC20().DeployedBytecode
	codeHash := crypto.Keccak256Hash(runtime)
	created := map[common.Address]bool{}
	for i, r := range geth.receipts {
		tx := w.Txs[i]
		addr := w.Created(tx)
		if r.ContractAddress != addr || created[addr] {
			t.Fatalf("tx %d created %s, want the fresh %s", i, r.ContractAddress, addr)
		}
		created[addr] = true
		acc, ok := v.Account(addr)
		if !ok || acc.CodeHash != codeHash || acc.Nonce != 1 || !bytes.Equal(v.Code(acc.CodeHash), runtime) {
			t.Fatalf("tx %d: no ERC-20 at %s (%+v)", i, addr, acc)
		}
		deployer := w.Senders[tx.Sender].Addr
		if got := v.Storage(addr, TokenBalanceSlot(deployer)).Big(); got.Cmp(DeployTokenSupply) != 0 {
			t.Fatalf("tx %d: deployer holds %v", i, got)
		}
	}
}

// TestEngineBlockGasLimit: a block whose transactions' gas limits exceed the
// genesis gas limit (3,000 deployments) runs with a gas limit raised to fit.
func TestEngineBlockGasLimit(t *testing.T) {
	const txs = 3000
	w, err := Generate(EngineWorkloadConfig(KindDeploy, txs, txs, 14))
	if err != nil {
		t.Fatal(err)
	}
	genesisLimit := w.Genesis().GasLimit
	in, err := prepareEngine(w, txs)
	if err != nil {
		t.Fatal(err)
	}
	if need := uint64(txs * DeployGas); genesisLimit >= need || in.env(0).Block.GasLimit != need {
		t.Fatalf("genesis gas limit %d, engine's %d, block needs %d", genesisLimit, in.env(0).Block.GasLimit, need)
	}
	if _, err := runKestrel(context.Background(), in, exec.Sequential{}, ""); err != nil {
		t.Fatal(err)
	}
}

// TestWorkloadSwapsPools: SenderPool sends HotPercent of every 100 consecutive
// senders to the hot pool and the others over the cold pools in turn; the
// genesis approves each sender's pool only.
func TestWorkloadSwapsPools(t *testing.T) {
	for _, tc := range []struct{ hot, wantHot int }{{0, 100}, {30, 60}, {100, 200}, {NoHotSwaps, 0}} {
		w, err := Generate(WorkloadConfig{Kind: KindSwaps, Txs: 200, Senders: 200, ColdPools: 9, HotPercent: tc.hot})
		if err != nil {
			t.Fatal(err)
		}
		hot, cold := 0, 0
		for s := range w.Senders {
			p := w.SenderPool(s)
			if p == w.Pool {
				hot++
				continue
			}
			if p != w.ColdPools[cold%9] {
				t.Fatalf("hot %d: cold sender %d (#%d) on %s", tc.hot, s, cold, p)
			}
			cold++
		}
		if hot != tc.wantHot {
			t.Fatalf("hot %d: %d hot senders, want %d", tc.hot, hot, tc.wantHot)
		}
		alloc := w.Alloc()
		if len(alloc[w.ColdPools[8]].Code) == 0 || len(alloc[w.Pool].Code) == 0 {
			t.Fatal("pools missing from the alloc")
		}
		for s, sender := range w.Senders {
			for _, p := range w.Pools() {
				approved := alloc[w.Token0].Storage[TokenAllowanceSlot(sender.Addr, p)] == common.MaxHash
				if approved != (p == w.SenderPool(s)) {
					t.Fatalf("hot %d: sender %d approval of %s: %v", tc.hot, s, p, approved)
				}
			}
		}
	}
	for _, bad := range []WorkloadConfig{
		{Kind: KindSwaps, Txs: 1, Senders: 1, HotPercent: 101},
		{Kind: KindSwaps, Txs: 1, Senders: 1, HotPercent: -2},
		{Kind: KindSwaps, Txs: 1, Senders: 1, ColdPools: MaxColdPools + 1},
	} {
		if _, err := Generate(bad); err == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
	// Nothing but ETH and ERC-20 transfers counts as received.
	w, err := Generate(EngineWorkloadConfig(KindNFT, 10, 10, 1))
	if err != nil {
		t.Fatal(err)
	}
	if r := w.Received(w.Txs); len(r) != 0 {
		t.Fatalf("nft workload received %v", r)
	}
}
