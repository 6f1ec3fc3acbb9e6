package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// TestReplicaCrashRecovery runs `kestrel sequencer` and `kestrel replica` as a
// user does, with transfers flowing, and kills the replica with SIGKILL at
// random moments while it applies the stream: each restart recovers its chain
// from its data directory (no new bootstrap). Last, the replica is killed and
// its data directory wiped: it bootstraps from a snapshot again. In the end its
// block at the sequencer's head has the sequencer's hash and state root, and it
// serves the sequencer's receipts.
func TestReplicaCrashRecovery(t *testing.T) {
	kills := 3
	if testing.Short() {
		kills = 2
	}
	dir := t.TempDir()
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("kill timing seed %d", seed)

	seq := &proc{node: startNode(t, dir)}
	t.Cleanup(func() { seq.end(t, true) })
	streamURL := logValue(t, seq.log.Name(), "Diff stream server started", "url")
	sc, err := ethclient.Dial(seq.url)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()

	// Transfers to the sequencer for the whole test, acknowledged with their
	// receipt.
	var mu sync.Mutex
	acks := make(map[common.Hash]*types.Receipt)
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopLoad()
	accounts := chain.DevAccounts()[:4]
	signer := types.LatestSignerForChainID(big.NewInt(chain.DevChainID))
	for i, acc := range accounts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := uint64(0); ctx.Err() == nil; k++ {
				tx, _ := types.SignNewTx(acc.Key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(chain.DevChainID), Nonce: k,
					GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(100 * params.GWei), Gas: 21000,
					To: &accounts[(i+1)%len(accounts)].Address, Value: big.NewInt(int64(k + 1))})
				r, err := sc.SendTransactionSync(ctx, tx, nil)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("sequencer refused a transfer: %v", err)
					}
					return
				}
				mu.Lock()
				acks[tx.Hash()] = r
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}

	dataDir := filepath.Join(dir, "replica")
	run := 0
	startRep := func() *proc {
		t.Helper()
		run++
		return startReplicaNode(t, filepath.Join(dir, fmt.Sprintf("replica-%d.log", run)), dataDir, streamURL, seq.url)
	}
	// killMidStream lets the replica catch up with the sequencer, then kills it
	// a random moment later, while it applies the stream.
	killMidStream := func(rep *proc) {
		t.Helper()
		target, err := sc.BlockNumber(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		waitNodeBlock(t, rep, target)
		time.Sleep(time.Duration(100+rng.Intn(600)) * time.Millisecond)
		rep.end(t, false)
	}

	rep := startRep()
	for k := 0; k < kills; k++ {
		killMidStream(rep)
		rep = startRep()
		out := readLog(t, rep.log.Name())
		if !strings.Contains(out, `msg="Recovered chain"`) || strings.Contains(out, "Bootstrapped from state snapshot") {
			t.Fatalf("replica restarted after SIGKILL %d did not recover its chain from disk:\n%s", k+1, out)
		}
		t.Logf("kill %d: %s", k+1, logLineWith(out, `msg="Recovered chain"`))
	}
	killMidStream(rep)
	if err := os.RemoveAll(dataDir); err != nil {
		t.Fatal(err)
	}
	rep = startRep()
	out := readLog(t, rep.log.Name())
	if !strings.Contains(out, "Bootstrapped from state snapshot") {
		t.Fatalf("replica on a wiped data directory did not bootstrap:\n%s", out)
	}
	bootBlock, err := strconv.ParseUint(logValue(t, rep.log.Name(), "Bootstrapped from state snapshot", "block"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	// A little more load on the bootstrapped replica, then none.
	target, err := sc.BlockNumber(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitNodeBlock(t, rep, target+2)
	stopLoad()
	wg.Wait()

	// The head once every acknowledged transaction's block is sealed.
	last := uint64(0)
	for _, r := range acks {
		last = max(last, r.BlockNumber.Uint64())
	}
	waitNodeBlock(t, seq, last)
	head, err := sc.HeaderByNumber(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ethclient.Dial(rep.url)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	waitNodeBlock(t, rep, head.Number.Uint64())
	got, err := rc.HeaderByNumber(context.Background(), head.Number)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash() != head.Hash() || got.Root != head.Root {
		t.Fatalf("block %d: replica hash %s root %s, sequencer hash %s root %s", head.Number, got.Hash(), got.Root, head.Hash(), head.Root)
	}
	checked := 0
	for h, want := range acks {
		if want.BlockNumber.Uint64() <= bootBlock {
			continue // before the replica's snapshot: history it does not keep
		}
		// The acknowledgement came before the block was sealed: the block
		// hash is the sealed receipt's.
		sealed, err := sc.TransactionReceipt(context.Background(), h)
		if err != nil {
			t.Fatalf("sequencer receipt of %s: %v", h, err)
		}
		if err := sameReceipt(want, sealed); err != nil {
			t.Fatalf("sequencer receipt of %s changed since its acknowledgement: %v", h, err)
		}
		r, err := rc.TransactionReceipt(context.Background(), h)
		if err != nil {
			t.Fatalf("replica receipt of %s (block %d): %v", h, want.BlockNumber, err)
		}
		if err := sameReceipt(sealed, r); err != nil || r.BlockHash != sealed.BlockHash {
			t.Fatalf("replica receipt of %s: %v (block hash %s, sequencer's %s)", h, err, r.BlockHash, sealed.BlockHash)
		}
		checked++
	}
	t.Logf("%d SIGKILLs and a wiped data directory; replica at block %d (hash %s) with the sequencer; %d of %d acknowledged receipts after its bootstrap block %d compared",
		kills+1, head.Number, head.Hash(), checked, len(acks), bootBlock)
	rep.end(t, true)
}

// proc is a node subprocess that a test ends once.
type proc struct {
	*node
	ended bool
}

// end stops the node with SIGTERM (checking that it exits cleanly) or kills
// it with SIGKILL; a node already ended is left alone.
func (p *proc) end(t *testing.T, graceful bool) {
	if p.ended {
		return
	}
	p.ended = true
	if graceful {
		p.stop(t)
	} else {
		p.kill(t)
	}
}

// startReplicaNode starts `kestrel replica` following the sequencer's stream
// and waits for its JSON-RPC server, which opens once it has its chain (from
// disk or a snapshot).
func startReplicaNode(t *testing.T, logPath, dataDir, streamURL, seqURL string) *proc {
	t.Helper()
	addr := freePort(t)
	n := &proc{node: startProcess(t, logPath, addr, []string{"replica", "--datadir", dataDir, "--http.addr", addr, "--stream.url", streamURL,
		"--sequencer.rpc", seqURL, "--replica.snapshot-every", "4", "--log.level", "info"})}
	t.Cleanup(func() { n.end(t, false) })
	return n
}

// waitNodeBlock waits until a node serves block n, failing when it exits.
func waitNodeBlock(t *testing.T, n *proc, block uint64) {
	t.Helper()
	ec, err := ethclient.Dial(n.url)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		have, err := ec.BlockNumber(context.Background())
		if err == nil && have >= block {
			return
		}
		select {
		case err := <-n.done:
			n.done <- err
			t.Fatalf("node exited waiting for block %d: %v\n%s", block, err, readLog(t, n.log.Name()))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node at block %d (%v), want %d:\n%s", have, err, block, readLog(t, n.log.Name()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	out, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(out)
}

// logLineWith is the first line of a text log holding s.
func logLineWith(log, s string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

// logValue is the value of key on the first line of a node's text log whose
// message starts with msg.
func logValue(t *testing.T, path, msg, key string) string {
	t.Helper()
	out := readLog(t, path)
	line := logLineWith(out, `msg="`+msg)
	m := regexp.MustCompile(`(?:^| )` + regexp.QuoteMeta(key) + `=(\S+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no %s= on a %q line of %s:\n%s", key, msg, path, out)
	}
	return m[1]
}
