package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/store"
)

// TestDevnetGenesis: the devnet's genesis is the same on every call (a devnet
// resumes only on it), and funds the dev accounts and the load accounts,
// which are sixteen others.
func TestDevnetGenesis(t *testing.T) {
	a, err := json.Marshal(devnetGenesis())
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(devnetGenesis()); !bytes.Equal(a, b) {
		t.Fatal("devnet genesis differs between calls")
	}
	g := devnetGenesis()
	dev := make(map[common.Address]bool)
	for _, acc := range chain.DevAccounts() {
		dev[acc.Address] = true
		if g.Alloc[acc.Address].Balance.Cmp(chain.DevBalance) != 0 {
			t.Errorf("dev account %s not funded", acc.Address)
		}
	}
	seen := make(map[common.Address]bool)
	for i, k := range devnetLoadKeys() {
		switch {
		case dev[k.Address]:
			t.Errorf("load account %d is a dev-mnemonic account", i)
		case seen[k.Address]:
			t.Errorf("load account %d repeats", i)
		case g.Alloc[k.Address].Balance == nil || g.Alloc[k.Address].Balance.Sign() == 0:
			t.Errorf("load account %d not funded", i)
		}
		seen[k.Address] = true
	}
	if len(seen) != devnetLoadAccounts {
		t.Fatalf("%d load accounts", len(seen))
	}
	if devnetLoadKeys()[0].Address != devnetLoadKeys()[0].Address {
		t.Fatal("load keys are not deterministic")
	}
}

func TestDevnetStatusFormat(t *testing.T) {
	t0 := time.Unix(1000, 0)
	prev := statusSample{At: t0, Head: 10, MiniBlocks: 100, Txs: 1000, LoadOn: true, LoadSent: 500, LoadFailed: 2, ReplicaLag: []uint64{3, 0}}
	for _, tc := range []struct {
		cur  statusSample
		want string
	}{
		{statusSample{At: t0.Add(time.Second), Head: 11, MiniBlocks: 121, Txs: 1020, LoadOn: true, LoadSent: 520, LoadFailed: 2, ReplicaLag: []uint64{0, 1}},
			"block 11 | 21 mini-blocks/s | 20 tx/s | load 20/s | replica lag 0, 1 mini-blocks"},
		{statusSample{At: t0.Add(10 * time.Second), Head: 20, MiniBlocks: 115, Txs: 1003, LoadOn: true, LoadSent: 500, LoadFailed: 5},
			"block 20 | 1.5 mini-blocks/s | 0.3 tx/s | load 0/s (3 refused)"},
		{statusSample{At: t0.Add(2 * time.Second), Head: 12, MiniBlocks: 100, Txs: 1000, ReplicaLag: []uint64{7}},
			"block 12 | 0 mini-blocks/s | 0 tx/s | load off | replica lag 7 mini-blocks"},
		{statusSample{At: t0, Head: 10, MiniBlocks: 100, Txs: 1000}, "block 10 | 0 mini-blocks/s | 0 tx/s | load off"},
	} {
		if got := formatStatus(prev, tc.cur); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

// TestDevnetStatusLine: on a terminal the line is redrawn in place, a log line
// erases it and draws it again below, and stop ends it with a newline;
// elsewhere each status is a line of its own and logs pass through untouched.
func TestDevnetStatusLine(t *testing.T) {
	var out, logs bytes.Buffer
	s := newStatusLine(&out, true)
	lw := s.logWriter(&out, true) // logs and status on one screen
	s.show("block 1")
	s.show("block 2")
	fmt.Fprint(lw, "level=WARN msg=x\n")
	s.stop()
	s.stop()
	want := clearLine + "block 1" + clearLine + "block 2" + clearLine + "level=WARN msg=x\n" + "block 2" + clearLine + "block 2\n"
	if out.String() != want {
		t.Fatalf("terminal output %q, want %q", out.String(), want)
	}

	out.Reset()
	s = newStatusLine(&out, false)
	if s.interval != 10*time.Second {
		t.Fatalf("interval %v off a terminal", s.interval)
	}
	lw = s.logWriter(&logs, true)
	s.show("block 1")
	fmt.Fprint(lw, "log\n")
	s.show("block 2")
	s.stop()
	if out.String() != "block 1\nblock 2\n" || logs.String() != "log\n" {
		t.Fatalf("output %q, logs %q", out.String(), logs.String())
	}

	// The ticker's lines, from sampled figures.
	out.Reset()
	s = newStatusLine(&out, false)
	s.interval = 10 * time.Millisecond
	var n uint64
	var mu sync.Mutex
	s.start(func() statusSample {
		mu.Lock()
		defer mu.Unlock()
		n++
		return statusSample{At: time.Now(), Head: n}
	})
	time.Sleep(50 * time.Millisecond)
	s.stop()
	if !strings.Contains(out.String(), "block 2 | 0 mini-blocks/s | 0 tx/s | load off\n") {
		t.Fatalf("ticker output %q", out.String())
	}
}

// fakeLoadNode is a node for the load: it keeps each account's nonce and
// accepts only the next one; it can fail calls, before or after acting on
// them.
type fakeLoadNode struct {
	mu       sync.Mutex
	signer   types.Signer
	nonces   map[common.Address]uint64
	accepted int
	down     bool // calls fail, nothing is done
	lose     bool // transactions are accepted, the answer is lost
}

func (f *fakeLoadNode) PendingNonces(_ context.Context, addrs []common.Address) ([]uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errors.New("connection refused")
	}
	out := make([]uint64, len(addrs))
	for i, a := range addrs {
		out[i] = f.nonces[a]
	}
	return out, nil
}

func (f *fakeLoadNode) SendRawTransactions(_ context.Context, raws [][]byte) ([]error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errors.New("connection refused")
	}
	errs := make([]error, len(raws))
	for i, raw := range raws {
		tx := new(types.Transaction)
		if err := tx.UnmarshalBinary(raw); err != nil {
			return nil, err
		}
		from, err := types.Sender(f.signer, tx)
		if err != nil {
			return nil, err
		}
		switch n := f.nonces[from]; {
		case tx.Nonce() < n:
			errs[i] = errors.New("nonce too low")
		case tx.Nonce() > n:
			errs[i] = errors.New("nonce too high")
		default:
			f.nonces[from]++
			f.accepted++
		}
	}
	if f.lose {
		return nil, errors.New("EOF")
	}
	return errs, nil
}

func (f *fakeLoadNode) Close() {}

// TestDevnetLoadNonces: the load starts from the node's pending nonces (a
// resumed chain), and after a refused nonce or a lost answer it reads them
// again instead of stalling or crashing.
func TestDevnetLoadNonces(t *testing.T) {
	ctx := context.Background()
	keys := devnetLoadKeys()
	node := &fakeLoadNode{signer: types.LatestSignerForChainID(big.NewInt(chain.DevChainID)), nonces: map[common.Address]uint64{keys[0].Address: 5}}
	l := newDevnetLoadWith(node, chain.DevChainID, 20, slog.New(slog.NewTextHandler(io.Discard, nil)))
	check := func(what string, sent, failed uint64) {
		t.Helper()
		if l.sent.Load() != sent || l.failed.Load() != failed {
			t.Fatalf("%s: sent %d failed %d, want %d and %d", what, l.sent.Load(), l.failed.Load(), sent, failed)
		}
	}

	l.step(ctx, 2*devnetLoadAccounts)
	check("start", 32, 0)
	if node.nonces[keys[0].Address] != 7 || node.nonces[keys[1].Address] != 2 {
		t.Fatalf("nonces %d %d", node.nonces[keys[0].Address], node.nonces[keys[1].Address])
	}

	node.nonces[keys[3].Address]++ // someone else sent from account 3
	l.step(ctx, devnetLoadAccounts)
	check("foreign transaction", 47, 1)
	l.step(ctx, devnetLoadAccounts)
	check("after resync", 63, 1)

	node.down = true
	l.step(ctx, devnetLoadAccounts)
	check("node down", 63, 17)
	node.down, node.lose = false, true
	l.step(ctx, devnetLoadAccounts)
	check("lost answer", 63, 33)
	node.lose = false
	l.step(ctx, devnetLoadAccounts)
	check("recovered", 79, 33)
	for i, k := range keys {
		if l.stale[i] || l.nonces[i] != node.nonces[k.Address] {
			t.Fatalf("account %d: nonce %d (stale %v), node %d", i, l.nonces[i], l.stale[i], node.nonces[k.Address])
		}
	}

	// run keeps its rate and stops with its context.
	before := l.sent.Load()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	l.rate = 200
	go func() { defer close(done); l.run(runCtx) }()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("load did not stop")
	}
	if got := l.sent.Load() - before; got < 10 || got > 100 {
		t.Fatalf("run at 200/s sent %d in 0.3 s", got)
	}
}

// TestDevnetResetRefusesForeignDir: --devnet.reset wipes only a directory that
// holds what a devnet writes.
func TestDevnetResetRefusesForeignDir(t *testing.T) {
	dir := t.TempDir()
	if err := checkDevnetDir(filepath.Join(dir, "missing")); err != nil {
		t.Fatalf("missing dir: %v", err)
	}
	if err := checkDevnetDir(dir); err != nil {
		t.Fatalf("empty dir: %v", err)
	}
	for _, d := range []string{"chain", "nats/jetstream", "replica-1/chain"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := checkDevnetDir(dir); err == nil || !strings.Contains(err.Error(), "no Kestrel chain database") {
		t.Fatalf("dir without a store: %v", err)
	}
	st, err := store.Open(filepath.Join(dir, "chain"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkDevnetDir(dir); err != nil {
		t.Fatalf("devnet dir: %v", err)
	}
	if err := wipeDevnetDir(dir); err == nil || !strings.Contains(err.Error(), "is a devnet running on it?") {
		t.Fatalf("wipe of a directory in use: %v", err)
	}
	st.Close()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := wipeDevnetDir(dir); err == nil || !strings.Contains(err.Error(), `refusing to wipe`) {
		t.Fatalf("dir with a foreign file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "chain")); err != nil {
		t.Fatalf("refused wipe removed something: %v", err)
	}
	os.Remove(filepath.Join(dir, "notes.txt"))
	if err := wipeDevnetDir(dir); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left %v", entries)
	}
}

// TestDevnetFlagsRejectBadValues: bad devnet settings stop `kestrel devnet`
// with a clear error before anything starts (nothing is written or wiped).
func TestDevnetFlagsRejectBadValues(t *testing.T) {
	foreign := t.TempDir()
	if err := os.WriteFile(filepath.Join(foreign, "thesis.tex"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	genesisFile := filepath.Join(t.TempDir(), "genesis.json")
	if err := os.WriteFile(genesisFile, []byte(`{"chainId": 5}`), 0o644); err != nil {
		t.Fatal(err)
	}
	// A data directory holding a chain of another genesis.
	other := t.TempDir()
	st, err := store.Open(filepath.Join(other, "chain"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutGenesis([]byte(`{"chainId": 5}`)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	fresh := filepath.Join(t.TempDir(), "fresh")
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--datadir", fresh, "--devnet.load", "-1"}, "", "--devnet.load must be between 0 (off) and 10000"},
		{[]string{"--datadir", fresh, "--devnet.load", "20000"}, "", "--devnet.load must be between 0 (off) and 10000"},
		{[]string{"--datadir", fresh, "--devnet.load", "fast"}, "", `invalid value "fast" for flag -devnet.load`},
		{[]string{"--datadir", fresh}, "KESTREL_DEVNET_LOAD=-5", "--devnet.load must be between 0 (off) and 10000"},
		{[]string{"--datadir", fresh, "--devnet.replicas", "-1"}, "", "--devnet.replicas must be between 0 and 16"},
		{[]string{"--datadir", fresh, "--devnet.status=sometimes"}, "", `invalid boolean value "sometimes" for -devnet.status`},
		{[]string{"--datadir", foreign, "--devnet.reset"}, "", `refusing to wipe ` + foreign},
		{[]string{"--datadir", fresh, "--genesis", genesisFile}, "", "--devnet.load sends from the devnet's own accounts, which the --genesis file does not fund"},
		{[]string{"--datadir", other}, "", "holds a chain with another genesis"},
	} {
		cmd := append([]string{"devnet", "--http.addr", "127.0.0.1:0", "--stream.listen", "127.0.0.1:0"}, tc.args...)
		out, err := runMainEnv(t, tc.env, cmd...)
		if exitCode(err) == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%v %s: exit %v, want non-zero and %q in\n%s", tc.args, tc.env, err, tc.want, out)
		}
		if strings.Contains(out, "Kestrel devnet (") {
			t.Errorf("%v: started before failing:\n%s", tc.args, out)
		}
	}
	if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused devnet created its data directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(foreign, "thesis.tex")); err != nil {
		t.Errorf("a refused reset removed a file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(other, "chain")); err != nil {
		t.Errorf("the other chain is gone: %v", err)
	}
}

// runMainEnv is runMain with one more environment variable (KEY=VALUE) when
// env is not empty.
func runMainEnv(t *testing.T, env string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "KESTREL_TEST_RUN_MAIN=1")
	if env != "" {
		cmd.Env = append(cmd.Env, env)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// freePortPair finds a port whose next port is free too (the devnet's first
// replica listens there).
func freePortPair(t *testing.T) string {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+1)))
		l.Close()
		if err == nil {
			l2.Close()
			return l.Addr().String()
		}
	}
	t.Fatal("no two consecutive free ports")
	return ""
}

// interrupt sends SIGINT, as Ctrl-C does, and wants a clean exit soon.
func (n *node) interrupt(t *testing.T) {
	t.Helper()
	start := time.Now()
	_ = n.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("exit after SIGINT: %v", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("stopping took %v", d)
		}
	case <-time.After(30 * time.Second):
		n.kill(t)
		t.Fatal("devnet did not stop on SIGINT")
	}
	n.log.Close()
}

// TestDevnetResume runs `kestrel devnet` as a user does: its load's transfers
// are included (and reach the replica) while the dev accounts stay untouched;
// Ctrl-C ends it with exit code 0; the next run resumes the same chain and the
// load continues from its accounts' nonces.
func TestDevnetResume(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "devnet")
	logPath := filepath.Join(dir, "devnet.log")
	loadAcc := devnetLoadKeys()[0].Address
	devAcc := chain.DevAccounts()[0].Address
	start := func() (*node, *ethclient.Client, *ethclient.Client) {
		addr := freePortPair(t)
		n := startProcess(t, logPath, addr, []string{"devnet", "--datadir", dataDir, "--http.addr", addr, "--stream.listen", "127.0.0.1:0",
			"--devnet.replicas", "1", "--devnet.load", "50", "--sequencer.block-interval", "200ms"})
		seq, err := ethclient.Dial(n.url)
		if err != nil {
			t.Fatal(err)
		}
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		rep, err := ethclient.Dial("http://" + net.JoinHostPort(host, strconv.Itoa(p+1)))
		if err != nil {
			t.Fatal(err)
		}
		return n, seq, rep
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				out, _ := os.ReadFile(logPath)
				t.Fatalf("timed out waiting for %s\n%s", what, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	nonceAt := func(ec *ethclient.Client, a common.Address) uint64 {
		n, err := ec.NonceAt(context.Background(), a, nil)
		if err != nil {
			return 0
		}
		return n
	}
	ctx := context.Background()

	n, seq, rep := start()
	waitFor("load transactions on the sequencer", func() bool { return nonceAt(seq, loadAcc) >= 3 })
	waitFor("load transactions on the replica", func() bool { return nonceAt(rep, loadAcc) >= 3 })
	waitFor("block 2", func() bool { h, err := seq.BlockNumber(ctx); return err == nil && h >= 2 })
	if nonce, err := seq.PendingNonceAt(ctx, devAcc); err != nil || nonce != 0 {
		t.Fatalf("dev account 0 pending nonce %d (%v): the load must not use it", nonce, err)
	}
	block1, err := seq.HeaderByNumber(ctx, big.NewInt(1))
	if err != nil {
		t.Fatal(err)
	}
	head, _ := seq.BlockNumber(ctx)
	seq.Close()
	rep.Close()
	n.interrupt(t)
	out, _ := os.ReadFile(logPath)
	if !strings.Contains(string(out), "Kestrel devnet (new chain)") {
		t.Fatalf("first run is not a new chain:\n%s", out)
	}

	n, seq, rep = start()
	defer func() { seq.Close(); rep.Close() }()
	// The banner comes once the replica runs.
	var banners [][][]byte
	waitFor("the second run's banner", func() bool {
		out, _ = os.ReadFile(logPath)
		banners = regexp.MustCompile(`Kestrel devnet \((new chain|resuming at block (\d+))\)`).FindAllSubmatch(out, -1)
		return len(banners) == 2
	})
	if len(banners[1][2]) == 0 {
		n.kill(t)
		t.Fatalf("second run does not resume:\n%s", out)
	}
	if resumedAt, _ := strconv.ParseUint(string(banners[1][2]), 10, 64); resumedAt < head {
		t.Errorf("resumed at block %d, the first run had sealed %d", resumedAt, head)
	}
	again, err := seq.HeaderByNumber(ctx, big.NewInt(1))
	if err != nil || again.Hash() != block1.Hash() {
		t.Fatalf("block 1 after resume: %v %v, was %s", again, err, block1.Hash())
	}
	before := nonceAt(seq, loadAcc)
	waitFor("the load to continue after resume", func() bool { return nonceAt(seq, loadAcc) >= before+2 })
	if nonce, err := seq.PendingNonceAt(ctx, devAcc); err != nil || nonce != 0 {
		t.Fatalf("dev account 0 pending nonce %d (%v) after resume", nonce, err)
	}
	n.interrupt(t)
}
