package replica

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/state"
	"github.com/kestrel-l2/kestrel/sequencer"
	"github.com/kestrel-l2/kestrel/store"
)

// testOptions cut snapshots into many chunks and fail fast.
var testOptions = bootstrapOptions{chunkBytes: 200, timeout: 5 * time.Second, retries: 2, backoff: time.Millisecond, restarts: 3, logEvery: time.Second}

func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func startSequencer(t *testing.T, dir string, snapshotEvery uint64) *sequencer.Sequencer {
	t.Helper()
	cfg := sequencer.DefaultConfig()
	cfg.DataDir = dir
	cfg.RPC.Addr = "127.0.0.1:0"
	cfg.SnapshotEvery = snapshotEvery
	cfg.BlockInterval = 200 * time.Millisecond
	ctx := context.Background()
	seq, err := sequencer.New(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := seq.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = seq.Stop(context.Background()) })
	return seq
}

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// storageInitCode deploys a one-byte contract after writing slots 1..n.
func storageInitCode(n int) []byte {
	var code []byte
	for i := 1; i <= n; i++ {
		code = append(code, 0x60, byte(i), 0x60, byte(i), 0x55) // SSTORE(i, i)
	}
	return append(code, 0x60, 0x5b, 0x60, 0x00, 0x53, 0x60, 0x01, 0x60, 0x00, 0xf3) // return [JUMPDEST]
}

// sendLoad sends transfers to new accounts and deploys a contract with storage;
// it returns the block of the last receipt.
func sendLoad(t *testing.T, url string) uint64 {
	t.Helper()
	ctx := context.Background()
	ec, err := ethclient.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	chainID := big.NewInt(chain.DevChainID)
	signer := types.LatestSignerForChainID(chainID)
	var hashes []common.Hash
	send := func(acc int, nonce uint64, to *common.Address, value int64, gas uint64, data []byte) {
		tx, err := types.SignNewTx(chain.DevAccounts()[acc].Key, signer, &types.DynamicFeeTx{ChainID: chainID, Nonce: nonce,
			GasTipCap: big.NewInt(params.GWei), GasFeeCap: big.NewInt(10 * params.GWei), Gas: gas, To: to, Value: big.NewInt(value), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		if err := ec.SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, tx.Hash())
	}
	for i := 0; i < 6; i++ {
		to := common.BytesToAddress(crypto.Keccak256([]byte(fmt.Sprint("bootstrap test ", i))))
		send(0, uint64(i), &to, int64(1000+i), 21_000, nil)
	}
	send(1, 0, nil, 0, 2_000_000, storageInitCode(40))
	last := uint64(0)
	deadline := time.Now().Add(10 * time.Second)
	for _, h := range hashes {
		for {
			r, err := ec.TransactionReceipt(ctx, h)
			if err == nil {
				if r.Status != types.ReceiptStatusSuccessful {
					t.Fatalf("transaction %s failed", h)
				}
				last = max(last, r.BlockNumber.Uint64())
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no receipt for %s: %v", h, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return last
}

// waitServed waits until the node serves a snapshot of a block past after.
func waitServed(t *testing.T, url string, after uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + sequencer.SnapshotPath)
		if err != nil {
			t.Fatal(err)
		}
		var m sequencer.SnapshotManifest
		err = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if m.Block > after {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot past block %d", after)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readSnapshot(t *testing.T, st *store.Store, id uint64) []*store.SnapshotAccount {
	t.Helper()
	var out []*store.SnapshotAccount
	if err := st.ReadSnapshot(id, func(a *store.SnapshotAccount) error { out = append(out, a); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkBootstrapped checks what a node needs to start from st (recoverChain):
// the genesis, the listed snapshot, block records max(0,B-256)..B, no progress,
// and the snapshot's state root equal to block B's.
func checkBootstrapped(t *testing.T, st *store.Store, res *BootstrapResult) []*store.SnapshotAccount {
	t.Helper()
	if _, err := st.Genesis(); err != nil {
		t.Fatalf("genesis: %v", err)
	}
	metas, err := st.Snapshots()
	if err != nil || len(metas) != 1 || metas[0] != (store.SnapshotMeta{ID: res.SnapshotID, MiniIndex: res.MiniIndex, Block: res.Block}) {
		t.Fatalf("snapshots %+v %v, result %+v", metas, err, res)
	}
	if _, err := st.BootstrapProgress(); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("progress left: %v", err)
	}
	for n := uint64(max(0, int64(res.Block)-256)); n <= res.Block; n++ {
		if _, err := st.Block(n); err != nil {
			t.Fatalf("block %d: %v", n, err)
		}
	}
	accounts := readSnapshot(t, st, res.SnapshotID)
	if len(accounts) != res.Accounts {
		t.Fatalf("%d accounts, result says %d", len(accounts), res.Accounts)
	}
	full := &chain.StateDiff{}
	for _, a := range accounts {
		ad := chain.AccountDiff{Address: a.Address, Nonce: a.Nonce, Balance: *a.Balance, CodeHash: a.CodeHash}
		if ad.CodeHash == (common.Hash{}) {
			ad.CodeHash = types.EmptyCodeHash
		}
		for k, v := range a.Storage {
			ad.Storage = append(ad.Storage, chain.SlotDiff{Key: k, Value: v})
		}
		full.Accounts = append(full.Accounts, ad)
	}
	full.Sort()
	root, err := state.NewMerkle(1).Apply(res.Block, full)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := st.Block(res.Block)
	if err != nil {
		t.Fatal(err)
	}
	if root != rec.Header.Root {
		t.Fatalf("snapshot root %s, block %d root %s", root, res.Block, rec.Header.Root)
	}
	return accounts
}

func sameAccounts(t *testing.T, got, want []*store.SnapshotAccount) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d accounts, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Address != w.Address || g.Nonce != w.Nonce || !g.Balance.Eq(w.Balance) || g.CodeHash != w.CodeHash ||
			!bytes.Equal(g.Code, w.Code) || len(g.Storage) != len(w.Storage) {
			t.Fatalf("account %s differs", w.Address)
		}
		for k, v := range w.Storage {
			if g.Storage[k] != v {
				t.Fatalf("account %s slot %s differs", w.Address, k)
			}
		}
	}
}

// proxy forwards to upstream; edit may change the status and body of the n-th
// chunk answer (from 1).
func proxy(t *testing.T, upstream string, edit func(n, status int, body []byte) (int, []byte)) string {
	t.Helper()
	var chunks atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(upstream + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		status := resp.StatusCode
		if strings.HasSuffix(r.URL.Path, "/chunk") && status == http.StatusOK {
			status, body = edit(int(chunks.Add(1)), status, body)
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	seqDir := t.TempDir()
	seq := startSequencer(t, seqDir, 2)
	url := "http://" + seq.RPCAddr()
	signer := seq.Signer()
	last := sendLoad(t, url)
	waitServed(t, url, last)

	// From a live node whose snapshots rotate every two blocks; the store then
	// starts a node, whose recovery compares the state root with block B's.
	liveDir := t.TempDir()
	st := openStore(t, liveDir+"/chain")
	res, err := Bootstrap(ctx, url, st, signer, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Block <= last || res.Resumed || res.Accounts < 8 || res.Bytes == 0 {
		t.Fatalf("result %+v (load in block %d)", res, last)
	}
	checkBootstrapped(t, st, res)
	if _, err := Bootstrap(ctx, url, st, signer, nil); !errors.Is(err, ErrBootstrapNotEmpty) {
		t.Fatalf("second bootstrap into the same store: %v", err)
	}
	st.Close()
	cfg := sequencer.DefaultConfig()
	cfg.DataDir, cfg.RPC.Addr = liveDir, "127.0.0.1:0"
	node, err := sequencer.New(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatalf("start a node on the bootstrapped store: %v", err)
	}
	if err := node.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// The rest runs against the same chain with its snapshots frozen, so that
	// the result can be compared with the node's own snapshot.
	if err := seq.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	seq = startSequencer(t, seqDir, 0)
	url = "http://" + seq.RPCAddr()
	type done struct {
		st  *store.Store
		res *BootstrapResult
	}
	var results []done
	newStore := func() *store.Store {
		st := openStore(t, t.TempDir())
		t.Cleanup(func() { st.Close() })
		return st
	}

	t.Run("interrupted", func(t *testing.T) {
		st := newStore()
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		via := proxy(t, url, func(n, status int, body []byte) (int, []byte) {
			if n == 2 {
				cancel() // after the second chunk
			}
			return status, body
		})
		if _, err := bootstrap(cctx, via, st, signer, testLogger(t), testOptions); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled bootstrap: %v", err)
		}
		if _, err := st.BootstrapProgress(); err != nil {
			t.Fatalf("no progress recorded: %v", err)
		}
		if metas, _ := st.Snapshots(); len(metas) != 0 {
			t.Fatal("an interrupted snapshot is listed")
		}
		if _, err := st.Genesis(); !errors.Is(err, store.ErrNotFound) {
			t.Fatal("an interrupted bootstrap wrote the genesis")
		}
		res, err := bootstrap(ctx, url, st, signer, testLogger(t), testOptions)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Resumed {
			t.Fatalf("not resumed: %+v", res)
		}
		checkBootstrapped(t, st, res)
		results = append(results, done{st, res})
	})

	t.Run("unavailable and rotated out", func(t *testing.T) {
		st := newStore()
		via := proxy(t, url, func(n, status int, body []byte) (int, []byte) {
			switch n {
			case 2:
				return http.StatusServiceUnavailable, []byte(`{"error":"busy"}`) // retried
			case 4:
				return http.StatusNotFound, []byte(`{"error":"snapshot 2 is not kept"}`) // started over
			}
			return status, body
		})
		res, err := bootstrap(ctx, via, st, signer, testLogger(t), testOptions)
		if err != nil {
			t.Fatal(err)
		}
		checkBootstrapped(t, st, res)
		results = append(results, done{st, res})
	})

	t.Run("tampered chunk", func(t *testing.T) {
		st := newStore()
		via := proxy(t, url, func(n, status int, body []byte) (int, []byte) {
			if n >= 3 {
				body[len(body)/2] ^= 1
			}
			return status, body
		})
		_, err := bootstrap(ctx, via, st, signer, testLogger(t), testOptions)
		if !errors.Is(err, sequencer.ErrBadSnapshotChunk) || !strings.Contains(err.Error(), "chunk at cursor") {
			t.Fatalf("tampered chunk: %v", err)
		}
		if metas, _ := st.Snapshots(); len(metas) != 0 {
			t.Fatal("a tampered snapshot is listed")
		}
		if _, err := st.Genesis(); !errors.Is(err, store.ErrNotFound) {
			t.Fatal("a failed bootstrap wrote the genesis")
		}
		// The chunks before the damaged one are kept: a retry resumes.
		res, err := bootstrap(ctx, url, st, signer, testLogger(t), testOptions)
		if err != nil || !res.Resumed {
			t.Fatalf("retry after a tampered chunk: %+v %v", res, err)
		}
		checkBootstrapped(t, st, res)
		results = append(results, done{st, res})
	})

	t.Run("other signer", func(t *testing.T) {
		st := newStore()
		_, err := bootstrap(ctx, url, st, chain.DevAccounts()[0].Address, testLogger(t), testOptions)
		if !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), "not signed by the sequencer") {
			t.Fatalf("headers of another signer: %v", err)
		}
		if _, err := st.BootstrapProgress(); !errors.Is(err, store.ErrNotFound) {
			t.Fatal("a rejected manifest recorded progress")
		}
	})

	t.Run("manifest checks", func(t *testing.T) { testManifestChecks(t, url, signer) })

	t.Run("stale progress", func(t *testing.T) {
		served := fetchManifest(t, url, nil)
		for name, p := range map[string]bootstrapProgress{
			"gone":       {ID: 987654, Block: 987654, Cursor: []byte{1}},
			"other hash": {ID: served.ID, Block: served.Block, MiniIndex: served.MiniIndex, Hash: common.Hash{1}},
		} {
			t.Run(name, func(t *testing.T) {
				st := newStore()
				enc, _ := rlp.EncodeToBytes(&p)
				junk := []store.SnapshotEntry{{Address: common.Address{0xaa}, Account: true, Nonce: 1, CodeHash: types.EmptyCodeHash}}
				if err := st.PutSnapshotEntries(p.ID, junk, enc); err != nil {
					t.Fatal(err)
				}
				res, err := bootstrap(ctx, url, st, signer, testLogger(t), testOptions)
				if err != nil {
					t.Fatal(err)
				}
				if res.Resumed {
					t.Fatal("resumed a snapshot the server does not have")
				}
				for _, a := range checkBootstrapped(t, st, res) {
					if a.Address == (common.Address{0xaa}) {
						t.Fatal("the abandoned snapshot's data was kept")
					}
				}
				if p.ID != res.SnapshotID && len(readSnapshot(t, st, p.ID)) != 0 {
					t.Fatal("the abandoned snapshot's data was kept")
				}
				results = append(results, done{st, res})
			})
		}
	})

	// Every bootstrap holds the node's own snapshot.
	if err := seq.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	src := openStore(t, seqDir+"/chain")
	defer src.Close()
	for _, d := range results {
		sameAccounts(t, readSnapshot(t, d.st, d.res.SnapshotID), readSnapshot(t, src, d.res.SnapshotID))
	}
	if len(results) != 5 {
		t.Fatalf("%d bootstraps compared", len(results))
	}
}

func fetchManifest(t *testing.T, url string, id *uint64) *verifiedManifest {
	t.Helper()
	m, err := newSnapClient(url, testOptions).manifest(context.Background(), id, crypto.PubkeyToAddress(sequencer.DevSequencerKey().PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// testManifestChecks edits a served manifest in the ways a wrong or malicious
// server could and checks that verifyManifest refuses each.
func testManifestChecks(t *testing.T, url string, signer common.Address) {
	resp, err := http.Get(url + sequencer.SnapshotPath)
	if err != nil {
		t.Fatal(err)
	}
	var served sequencer.SnapshotManifest
	err = json.NewDecoder(resp.Body).Decode(&served)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifyManifest(&served, signer); err != nil {
		t.Fatalf("served manifest: %v", err)
	}
	if len(served.Headers) < 3 || served.Block > 256 {
		t.Fatalf("manifest of block %d with %d headers; the checks need 3 to 257", served.Block, len(served.Headers))
	}
	otherKey, _ := crypto.GenerateKey()
	resign := func(m *sequencer.SnapshotManifest, i int, key *ecdsa.PrivateKey, edit func(*store.BlockRecord)) {
		var rec store.BlockRecord
		if err := rlp.DecodeBytes(m.Headers[i], &rec); err != nil {
			t.Fatal(err)
		}
		edit(&rec)
		sh, err := chain.SignHeader(rec.Header, key)
		if err != nil {
			t.Fatal(err)
		}
		rec.Signature = sh.Signature
		if m.Headers[i], err = rlp.EncodeToBytes(&rec); err != nil {
			t.Fatal(err)
		}
	}
	last := len(served.Headers) - 1
	for name, c := range map[string]struct {
		edit func(*sequencer.SnapshotManifest)
		want string
	}{
		"signed by another key": {func(m *sequencer.SnapshotManifest) { resign(m, last, otherKey, func(*store.BlockRecord) {}) }, "not signed by the sequencer"},
		"broken parent link": {func(m *sequencer.SnapshotManifest) {
			resign(m, 1, sequencer.DevSequencerKey(), func(r *store.BlockRecord) { r.Header.Extra = []byte("x") })
		}, "does not link to block 1"},
		"gap":              {func(m *sequencer.SnapshotManifest) { m.Headers = append(m.Headers[:1], m.Headers[2:]...) }, "headers for blocks"},
		"short":            {func(m *sequencer.SnapshotManifest) { m.Headers = m.Headers[:last] }, "headers for blocks"},
		"wrong mini-block": {func(m *sequencer.SnapshotManifest) { m.MiniIndex++ }, "ends at mini-block"},
		"garbage header":   {func(m *sequencer.SnapshotManifest) { m.Headers[0] = []byte{0xc1, 0x01} }, "malformed record"},
		"other genesis": {func(m *sequencer.SnapshotManifest) {
			var g chain.Genesis
			if err := json.Unmarshal(m.Genesis, &g); err != nil {
				t.Fatal(err)
			}
			g.Timestamp++
			m.Genesis, _ = json.Marshal(&g)
		}, "is not the genesis block"},
		"bad genesis": {func(m *sequencer.SnapshotManifest) { m.Genesis = json.RawMessage(`{"chainId":1,"x":2}`) }, "genesis"},
	} {
		m := served
		m.Headers = append([]hexutil.Bytes(nil), served.Headers...)
		c.edit(&m)
		if _, err := verifyManifest(&m, signer); !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
