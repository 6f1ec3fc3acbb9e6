package replica_test

import (
	"context"
	"encoding/json"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"

	"github.com/kestrel-l2/kestrel/replica"
	"github.com/kestrel-l2/kestrel/sequencer"
	"github.com/kestrel-l2/kestrel/stream"
)

// TestReplicasSurviveStreamServerRestart stops the external NATS server under
// load and starts it again on the same address and store: the sequencer keeps
// producing blocks while the stream is down, its publisher catches up when the
// server returns, and two replicas end with every acknowledged transaction and
// the sequencer's blocks.
func TestReplicasSurviveStreamServerRestart(t *testing.T) {
	scfg := stream.DefaultConfig()
	scfg.Listen = freeAddr(t)
	scfg.StoreDir = t.TempDir()
	natsLog, _ := newLogger(t)
	natsLog = natsLog.With("node", "nats")
	srv, err := stream.StartServer(scfg, natsLog)
	if err != nil {
		t.Fatal(err)
	}
	var srvMu sync.Mutex
	t.Cleanup(func() { // after the nodes (cleanups run last first)
		srvMu.Lock()
		defer srvMu.Unlock()
		if srv != nil {
			srv.Shutdown()
		}
	})
	seq := startSequencer(t, t.TempDir(), func(c *sequencer.Config) { c.Stream.URL = srv.URL() })
	sc := dial(t, seq.RPCAddr())
	r1 := startReplica(t, replicaConfig(seq, t.TempDir()), nil)
	r2 := startReplica(t, replicaConfig(seq, t.TempDir()), nil)

	// Load: transfers acknowledged with their receipt.
	var (
		mu    sync.Mutex
		acked []common.Hash
		addrs []common.Address
	)
	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	loadErr := make(chan error, 3)
	var wg sync.WaitGroup
	wallets := []*wallet{devWallet(0), devWallet(1), devWallet(2)}
	for _, w := range wallets {
		addrs = append(addrs, w.addr)
	}
	for i, w := range wallets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			signer := types.LatestSignerForChainID(chainID)
			for k := 0; ctx.Err() == nil; k++ {
				to := randomAddr("natsrestart", i*1_000_000+k%50)
				tx, err := types.SignNewTx(w.key, signer, &types.DynamicFeeTx{ChainID: chainID, Nonce: w.nonce,
					GasTipCap: big.NewInt(params.GWei), GasFeeCap: big.NewInt(10 * params.GWei), Gas: 21_000, To: &to, Value: big.NewInt(int64(k + 1))})
				if err != nil {
					loadErr <- err
					return
				}
				raw, _ := tx.MarshalBinary()
				var rcpt struct {
					Status hexutil.Uint64 `json:"status"`
				}
				cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err = sc.CallContext(cctx, &rcpt, "eth_sendRawTransactionSync", hexutil.Encode(raw))
				cancel()
				if err != nil {
					loadErr <- err
					return
				}
				w.nonce++
				mu.Lock()
				acked = append(acked, tx.Hash())
				if k < 50 {
					addrs = append(addrs, to)
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitUntil(t, 20*time.Second, "load before the outage", func() bool { return count() >= 30 })

	// The outage: the sequencer keeps producing, and the load keeps being
	// acknowledged.
	srvMu.Lock()
	srv.Shutdown()
	srv = nil
	srvMu.Unlock()
	down, headDown, ackedDown := time.Now(), seq.HeadNumber(), count()
	waitUntil(t, 20*time.Second, "blocks and transactions during the outage", func() bool {
		return time.Since(down) >= 1500*time.Millisecond && seq.HeadNumber() >= headDown+3 && count() >= ackedDown+10
	})
	t.Logf("stream down %v: sequencer blocks %d..%d, %d transactions acknowledged meanwhile",
		time.Since(down).Round(time.Millisecond), headDown, seq.HeadNumber(), count()-ackedDown)

	// The same address and store again (the port may take a moment to free).
	var restarted *stream.Server
	waitUntil(t, 20*time.Second, "the stream server to restart", func() bool {
		restarted, err = stream.StartServer(scfg, natsLog)
		return err == nil
	})
	srvMu.Lock()
	srv = restarted
	srvMu.Unlock()
	back := count()
	waitUntil(t, 20*time.Second, "load after the restart", func() bool { return count() >= back+30 })
	stopLoad()
	wg.Wait()
	select {
	case err := <-loadErr:
		t.Fatalf("the sequencer refused load around the outage: %v", err)
	default:
	}

	// The publisher saw the outage: a publish in flight failed (a new session
	// catches up), or, idle at the time, its connection was re-established.
	waitUntil(t, 20*time.Second, "the publisher to count the outage", func() bool {
		st := seq.Publisher().Stats()
		return st.Errors > 0 || st.Reconnects > 0
	})
	t.Logf("%d transactions acknowledged; publisher %+v", len(acked), seq.Publisher().Stats())
	for i, r := range []*replica.Replica{r1, r2} {
		rc := dial(t, r.RPCAddr())
		checkConverged(t, r.Bootstrapped().Block+1, sc, rc, dedupe(addrs), acked)
		for _, h := range acked {
			var rcpt json.RawMessage
			if err := rc.Call(&rcpt, "eth_getTransactionReceipt", h); err != nil {
				t.Fatal(err)
			}
			if string(rcpt) == "null" {
				t.Fatalf("replica %d has no receipt for acknowledged transaction %s", i+1, h)
			}
		}
	}
	t.Logf("replica stats: %+v / %+v", r1.Stats(), r2.Stats())
}

// freeAddr is a loopback address with a port free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
