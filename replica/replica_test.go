package replica_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/kestrel-l2/kestrel/contracts"
	"github.com/kestrel-l2/kestrel/sequencer"
)

// TestReplicasMatchSequencer is the replica's property test: for random
// workloads (transfers to new and existing accounts, ERC-20 deployments and
// transfers, reverts), sent to the sequencer and through the replicas, every
// replica ends with the sequencer's blocks, and every read answer at the last
// block equals the sequencer's. One replica follows from the start, the other
// bootstraps from a snapshot midway.
func TestReplicasMatchSequencer(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		t.Run("seed", func(t *testing.T) { replicaProperty(t, seed) })
	}
}

func replicaProperty(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	seq := startSequencer(t, t.TempDir(), nil)
	sc := dial(t, seq.RPCAddr())
	r1 := startReplica(t, replicaConfig(seq, t.TempDir()), nil)
	c1 := dial(t, r1.RPCAddr())

	wallets := make([]*wallet, 6)
	var addrs []common.Address
	for i := range wallets {
		wallets[i] = devWallet(i)
		addrs = append(addrs, wallets[i].addr)
	}
	var txs []common.Hash
	var tokens []common.Address
	var late *gethrpc.Client
	rounds := 30
	for round := 0; round < rounds; round++ {
		var raws [][]byte
		for k := 0; k < 20; k++ {
			w := wallets[rng.IntN(len(wallets))]
			switch op := rng.IntN(10); {
			case op < 4 || len(tokens) == 0 && op < 8:
				to := randomAddr("seed", rng.IntN(40))
				if rng.IntN(3) == 0 {
					to = wallets[rng.IntN(len(wallets))].addr
				}
				addrs = append(addrs, to)
				raws = append(raws, w.tx(t, &to, big.NewInt(int64(rng.IntN(1e9))+1), 21_000, nil))
			case op < 5:
				data, err := contracts.ERC20DeployData("T", "T", new(big.Int).Mul(big.NewInt(1e6), big.NewInt(params.Ether)))
				if err != nil {
					t.Fatal(err)
				}
				tokens = append(tokens, crypto.CreateAddress(w.addr, w.nonce))
				addrs = append(addrs, tokens[len(tokens)-1])
				raws = append(raws, w.tx(t, nil, nil, 2_000_000, data))
			default:
				if len(tokens) == 0 {
					continue
				}
				token := tokens[rng.IntN(len(tokens))]
				to := randomAddr("holder", rng.IntN(30))
				addrs = append(addrs, to)
				// Transfers from non-holders revert: reverted transactions are
				// part of the chain too.
				raws = append(raws, w.tx(t, &token, nil, 100_000, contracts.ERC20TransferData(to, big.NewInt(int64(rng.IntN(1000))))))
			}
		}
		// Half through the replica (forwarded), half to the sequencer.
		for i, raw := range raws {
			c := sc
			if i%2 == 1 {
				c = c1
			}
			txs = append(txs, send(t, c, raw)...)
		}
		if round == rounds/2 {
			// Past a snapshot other than genesis, so that the bootstrap is a real one.
			for seq.HeadNumber() < 6 {
				time.Sleep(20 * time.Millisecond)
			}
			// A replica started now bootstraps from the newest snapshot (the
			// stream still holds everything, but an empty disk needs state).
			r2 := startReplica(t, replicaConfig(seq, t.TempDir()), nil)
			if r2.Bootstrapped() == nil {
				t.Fatal("a replica on an empty disk did not bootstrap")
			}
			late = dial(t, r2.RPCAddr())
			from := r2.Bootstrapped().Block + 1
			t.Cleanup(func() { checkConverged(t, from, sc, late, addrs, txs) })
		}
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
	}
	checkConverged(t, 0, sc, c1, addrs, txs)
}

// checkConverged waits for every transaction's receipt on the sequencer, then
// for the replica to seal the same block, and compares their answers.
func checkConverged(t *testing.T, from uint64, sc, rc *gethrpc.Client, addrs []common.Address, txs []common.Hash) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, h := range txs {
		for {
			var rcpt json.RawMessage
			if err := sc.Call(&rcpt, "eth_getTransactionReceipt", h); err != nil {
				t.Fatal(err)
			}
			if string(rcpt) != "null" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no receipt for %s", h)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	var n hexutil.Uint64
	if err := sc.Call(&n, "eth_blockNumber"); err != nil {
		t.Fatal(err)
	}
	for {
		var rn hexutil.Uint64
		if err := rc.Call(&rn, "eth_blockNumber"); err != nil {
			t.Fatal(err)
		}
		if rn >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica at block %d, sequencer at %d", rn, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if a, b := blockHash(t, sc, uint64(n)), blockHash(t, rc, uint64(n)); a != b {
		t.Fatalf("block %d: sequencer %s, replica %s", n, a, b)
	}
	compareNodes(t, sc, rc, from, uint64(n), dedupe(addrs), txs)
}

func dedupe(addrs []common.Address) []common.Address {
	seen := make(map[common.Address]bool)
	var out []common.Address
	for _, a := range addrs {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// TestReplicaReadsItsOwnWrites sends with eth_sendRawTransactionSync through a
// replica: the answer comes once the replica applied the mini-block, so the
// very next read on the replica sees the write.
func TestReplicaReadsItsOwnWrites(t *testing.T) {
	seq := startSequencer(t, t.TempDir(), func(c *sequencer.Config) { c.MetricsAddr = "127.0.0.1:0" })
	rcfg := replicaConfig(seq, t.TempDir())
	rcfg.Node.MetricsAddr = "127.0.0.1:0"
	r := startReplica(t, rcfg, nil)
	rc := dial(t, r.RPCAddr())
	w := devWallet(3)
	to := randomAddr("ryw", 0)
	for i := 0; i < 5; i++ {
		raw := w.tx(t, &to, big.NewInt(1000), 21_000, nil)
		var rcpt map[string]any
		if err := rc.CallContext(context.Background(), &rcpt, "eth_sendRawTransactionSync", hexutil.Encode(raw)); err != nil {
			t.Fatalf("sync send through the replica: %v", err)
		}
		if rcpt["status"] != "0x1" {
			t.Fatalf("receipt %v", rcpt)
		}
		var bal hexutil.Big
		if err := rc.Call(&bal, "eth_getBalance", to, "pending"); err != nil {
			t.Fatal(err)
		}
		if want := big.NewInt(int64(1000 * (i + 1))); bal.ToInt().Cmp(want) != 0 {
			t.Fatalf("after write %d the replica reads balance %s, want %s", i, bal.ToInt(), want)
		}
		var nonce hexutil.Uint64
		if err := rc.Call(&nonce, "eth_getTransactionCount", w.addr, "pending"); err != nil {
			t.Fatal(err)
		}
		if uint64(nonce) != w.nonce {
			t.Fatalf("replica nonce %d, want %d", nonce, w.nonce)
		}
	}
	// Both nodes export their stream series.
	for addr, series := range map[string]string{seq.MetricsAddr(): "kestrel_stream_published_messages_total",
		r.Node().MetricsAddr(): "kestrel_replica_applied_mini_blocks_total"} {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), series+" ") {
			t.Errorf("%s does not export %s", addr, series)
		}
	}
	// The sequencer's refusal comes back unchanged.
	stale := devWallet(3) // nonce 0 again
	raw := stale.tx(t, &to, big.NewInt(1), 21_000, nil)
	viaReplica := rc.CallContext(context.Background(), nil, "eth_sendRawTransaction", hexutil.Encode(raw))
	direct := dial(t, seq.RPCAddr()).CallContext(context.Background(), nil, "eth_sendRawTransaction", hexutil.Encode(raw))
	if viaReplica == nil || direct == nil || viaReplica.Error() != direct.Error() {
		t.Fatalf("stale nonce: through the replica %v, from the sequencer %v", viaReplica, direct)
	}
	var ve, de gethrpc.Error
	if !errorsAs(viaReplica, &ve) || !errorsAs(direct, &de) || ve.ErrorCode() != de.ErrorCode() {
		t.Fatalf("error codes differ: %v / %v", viaReplica, direct)
	}
}

func errorsAs(err error, target *gethrpc.Error) bool { return errors.As(err, target) }
