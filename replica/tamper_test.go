package replica_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
	"github.com/holiman/uint256"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/replica"
	"github.com/kestrel-l2/kestrel/sequencer"
	"github.com/kestrel-l2/kestrel/store"
	"github.com/kestrel-l2/kestrel/stream"
)

// TestReplicaRejectsTamperedMessages feeds a replica a stream the test writes
// itself: the sequencer publishes its genuine chain to the streams named SRC,
// the replica follows the streams named KESTREL on the same server, and the
// test copies messages from one to the other — genuine, corrupted, signed by
// another key, out of order, replayed — checking after each what the replica
// did with it. Last, a mini-block whose diff the real sequencer key signed but
// which does not lead to the signed state root halts the replica; a replica
// restarted on its data directory resumes from the last verified block and
// converges to the sequencer from the genuine stream.
func TestReplicaRejectsTamperedMessages(t *testing.T) {
	// No snapshots on the tampered replica: TestReplicaMismatchAtSnapshotBlock
	// covers a mismatch at a snapshot block.
	g := newTamperRig(t, 0)
	r, node, other := g.r, g.r.Node(), chain.DevAccounts()[1].Key // any key but the sequencer's
	type head struct{ mini, block uint64 }
	headNow := func() head { return head{node.MiniBlockHead(), node.HeadNumber()} }
	// rejected waits for the n-th rejection and checks that it names why and
	// left the replica's head where it was.
	rejected := func(n uint64, kind string, streamSeq uint64, reason string, want head) {
		t.Helper()
		waitUntil(t, 20*time.Second, fmt.Sprintf("rejection %d", n), func() bool { return r.Stats().Rejected >= n })
		st := r.Stats()
		if st.Rejected != n {
			t.Fatalf("%d rejections, want %d (last: %s)", st.Rejected, n, st.LastRejection)
		}
		if !strings.Contains(st.LastRejection, reason) {
			t.Errorf("last rejection %q does not say %q", st.LastRejection, reason)
		}
		if line := logLine(g.logs.String(), `msg="Rejected a stream message"`, "kind="+kind, fmt.Sprintf("seq=%d ", streamSeq)); !strings.Contains(line, reason) {
			t.Errorf("no log line rejecting the %s at stream sequence %d for %q; found %q", kind, streamSeq, reason, line)
		}
		if got := headNow(); got != want {
			t.Fatalf("after a rejected %s the head moved from %+v to %+v", kind, want, got)
		}
	}

	// Genuine first mini-block.
	first := g.bootMini + 1
	g.pubMini(g.miniMsg[first])
	waitUntil(t, 20*time.Second, "the first mini-block applied", func() bool { return node.MiniBlockHead() == first })
	h := headNow()

	// (a) One flipped byte: the checksum fails.
	flipped := append([]byte(nil), g.miniMsg[first+1]...)
	flipped[len(flipped)/2] ^= 0x20
	s := g.pubMini(flipped)
	rejected(1, "mini-block", s, "checksum mismatch", h)

	// (b) A genuine mini-block signed by another key.
	mb, err := stream.NewDecoder().MiniBlock(g.miniMsg[first+1])
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.Sign(other); err != nil {
		t.Fatal(err)
	}
	forged, err := stream.NewEncoder().MiniBlock(mb)
	if err != nil {
		t.Fatal(err)
	}
	s = g.pubMini(forged)
	rejected(2, "mini-block", s, "not signed by the sequencer", h)

	// (c) Reordered: first+2 before first+1, published together. The later
	// one waits in the reorder buffer; both are applied, in order, without a
	// refetch.
	for _, i := range []uint64{first + 2, first + 1} {
		if _, err := g.js.PublishAsync("kestrel.mini", g.miniMsg[i]); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-g.js.PublishAsyncComplete():
	case <-g.ctx.Done():
		t.Fatal("reordered publishes not acknowledged")
	}
	waitUntil(t, 20*time.Second, "the reordered mini-blocks applied", func() bool { return node.MiniBlockHead() == first+2 })
	if st := r.Stats(); st.Rejected != 2 || st.Duplicates != 0 || st.Refetched != 0 {
		t.Fatalf("reordered mini-blocks: stats %+v, want 2 rejections, no duplicate, no refetch", st)
	}

	// (d) A replayed old mini-block: a duplicate, skipped.
	h = headNow()
	g.pubMini(g.miniMsg[first])
	waitUntil(t, 20*time.Second, "the replay counted as a duplicate", func() bool { return r.Stats().Duplicates >= 1 })
	if st := r.Stats(); st.Duplicates != 1 || st.Rejected != 2 || headNow() != h {
		t.Fatalf("replayed mini-block %d: stats %+v, head %+v (was %+v)", first, st, headNow(), h)
	}

	g.nextMini = first + 3
	g.advance(g.blockOf(first + 2))

	// (e) A header signed by another key, for the block whose mini-blocks are
	// all applied: rejected, the block stays unsealed until the genuine one.
	hb := g.nextHeader
	if hb >= g.lastTxBlock {
		t.Fatalf("block %d for the header case is not before the last transaction block %d", hb, g.lastTxBlock)
	}
	for ; g.nextMini <= g.header[hb].LastMini; g.nextMini++ {
		g.pubMini(g.miniMsg[g.nextMini])
	}
	waitUntil(t, 20*time.Second, fmt.Sprintf("block %d's mini-blocks applied", hb), func() bool { return node.MiniBlockHead() == g.header[hb].LastMini })
	h = headNow()
	rec := *g.header[hb]
	sh, err := chain.SignHeader(rec.Header, other)
	if err != nil {
		t.Fatal(err)
	}
	rec.Signature = sh.Signature
	forged, err = stream.NewEncoder().BlockRecord(&rec)
	if err != nil {
		t.Fatal(err)
	}
	s = g.pubHeader(forged)
	rejected(3, "header", s, "not signed by the sequencer", h)
	g.advance(hb)

	// (f) A diff that does not lead to the signed root.
	g.mismatchAndResume(g.lastTxBlock, false)
	if st := r.Stats(); st.Rejected != 3 || st.Duplicates != 1 {
		t.Fatalf("stats %+v, want only the 3 rejections and the duplicate above", st)
	}
}

// TestReplicaMismatchAtSnapshotBlock halts a replica that writes a snapshot at
// every block on a block whose diff does not lead to the signed root: the
// snapshot of the unverified block must not keep its mini-blocks in the data
// directory nor serve as the state a restart recovers from.
func TestReplicaMismatchAtSnapshotBlock(t *testing.T) {
	g := newTamperRig(t, 1)
	g.mismatchAndResume(g.lastTxBlock, true)
}

// tamperRig is a sequencer publishing to the SRC streams, a replica following
// the KESTREL streams on the same server, which only the test writes, and the
// genuine messages of the blocks after the replica's bootstrap block up to the
// last block with one of the test's transactions.
type tamperRig struct {
	t                                *testing.T
	ctx                              context.Context
	seq                              *sequencer.Sequencer
	sc                               *gethrpc.Client
	js                               jetstream.JetStream
	r                                *replica.Replica
	dir                              string
	log                              *slog.Logger
	logs                             *logBuffer
	txs                              []common.Hash
	addrs                            []common.Address
	bootBlock, bootMini, lastTxBlock uint64
	header                           map[uint64]*store.BlockRecord
	headerMsg, miniMsg               map[uint64][]byte
	// nextMini and nextHeader are the next genuine messages advance publishes.
	nextMini, nextHeader uint64
}

func newTamperRig(t *testing.T, snapshotEvery uint64) *tamperRig {
	g := &tamperRig{t: t, dir: t.TempDir(), header: make(map[uint64]*store.BlockRecord),
		headerMsg: make(map[uint64][]byte), miniMsg: make(map[uint64][]byte)}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	g.ctx = ctx
	g.seq = startSequencer(t, t.TempDir(), func(c *sequencer.Config) { c.Stream.Name = "SRC" })
	g.sc = dial(t, g.seq.RPCAddr())
	url := g.seq.StreamURL()

	// Bootstrap past a snapshot other than genesis.
	waitUntil(t, 20*time.Second, "sequencer block 5", func() bool { return g.seq.HeadNumber() >= 5 })
	g.log, g.logs = newLogger(t)
	cfg := replicaConfig(g.seq, g.dir)
	cfg.Node.SnapshotEvery = snapshotEvery
	r, err := replica.New(context.Background(), cfg, g.log.With("node", "replica"))
	if err != nil {
		t.Fatalf("new replica: %v", err)
	}
	g.r = r
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	if r.Bootstrapped() == nil {
		t.Fatal("a replica on an empty disk did not bootstrap")
	}
	g.bootBlock, g.bootMini = r.Node().HeadNumber(), r.Node().MiniBlockHead()
	if g.bootBlock != r.Bootstrapped().Block || g.bootMini != r.Bootstrapped().MiniIndex {
		t.Fatalf("bootstrapped block %d mini-block %d, node at %d / %d", r.Bootstrapped().Block, r.Bootstrapped().MiniIndex, g.bootBlock, g.bootMini)
	}
	g.nextMini, g.nextHeader = g.bootMini+1, g.bootBlock+1

	// The streams the replica follows, created before it starts so that its
	// first look at their bounds finds them.
	nc, err := nats.Connect(url, nats.Name("tamper-test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if g.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	for _, s := range []jetstream.StreamConfig{
		{Name: "KESTREL_MINI", Subjects: []string{"kestrel.mini"}, FirstSeq: g.bootMini + 1, Storage: jetstream.MemoryStorage, AllowDirect: true},
		{Name: "KESTREL_HEADERS", Subjects: []string{"kestrel.headers"}, FirstSeq: g.bootBlock + 1, Storage: jetstream.MemoryStorage, AllowDirect: true},
	} {
		if _, err := g.js.CreateStream(ctx, s); err != nil {
			t.Fatalf("create %s: %v", s.Name, err)
		}
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatalf("start replica: %v", err)
	}

	// Transactions in several blocks, all after a few empty blocks (for the
	// cases that need no transactions).
	waitUntil(t, 20*time.Second, "empty blocks after the bootstrap block", func() bool { return g.seq.HeadNumber() >= g.bootBlock+5 })
	wallets := []*wallet{devWallet(0), devWallet(1), devWallet(2)}
	g.addrs = []common.Address{wallets[0].addr, wallets[1].addr, wallets[2].addr}
	for batch := 0; batch < 4; batch++ {
		for i, w := range wallets {
			to := randomAddr("tamper", batch*len(wallets)+i)
			g.addrs = append(g.addrs, to)
			raw := w.tx(t, &to, big.NewInt(int64(1000+batch)), 21_000, nil)
			var rcpt struct {
				TxHash      common.Hash    `json:"transactionHash"`
				BlockNumber hexutil.Uint64 `json:"blockNumber"`
				Status      hexutil.Uint64 `json:"status"`
			}
			if err := g.sc.CallContext(ctx, &rcpt, "eth_sendRawTransactionSync", hexutil.Encode(raw)); err != nil {
				t.Fatalf("send: %v", err)
			}
			if rcpt.Status != 1 {
				t.Fatalf("transaction %s failed", rcpt.TxHash)
			}
			g.txs = append(g.txs, rcpt.TxHash)
			g.lastTxBlock = max(g.lastTxBlock, uint64(rcpt.BlockNumber))
		}
		// The next batch in a later block.
		b := g.lastTxBlock
		waitUntil(t, 20*time.Second, "next block", func() bool { return g.seq.HeadNumber() > b })
	}

	// The genuine messages, as the sequencer published them.
	src, err := stream.Dial(stream.Config{URL: url, Name: "SRC"}, "tamper-test-src", quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	waitUntil(t, 20*time.Second, fmt.Sprintf("the sequencer publishing block %d", g.lastTxBlock), func() bool {
		_, last, err := src.Bounds(ctx, stream.KindHeader)
		return err == nil && last >= g.lastTxBlock
	})
	dec := stream.NewDecoder()
	for n := g.bootBlock + 1; n <= g.lastTxBlock; n++ {
		data, err := src.Get(ctx, stream.KindHeader, n)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := dec.BlockRecord(data)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Header.Number.Uint64() != n {
			t.Fatalf("header message %d holds block %d", n, rec.Header.Number)
		}
		g.headerMsg[n], g.header[n] = data, rec
	}
	if first := g.header[g.bootBlock+1].FirstMini; first != g.bootMini+1 {
		t.Fatalf("block %d starts at mini-block %d, the replica's next is %d", g.bootBlock+1, first, g.bootMini+1)
	}
	for i := g.bootMini + 1; i <= g.header[g.lastTxBlock].LastMini; i++ {
		data, err := src.Get(ctx, stream.KindMiniBlock, i)
		if err != nil {
			t.Fatal(err)
		}
		g.miniMsg[i] = data
	}
	return g
}

func (g *tamperRig) publish(subject string, data []byte) uint64 {
	g.t.Helper()
	ack, err := g.js.Publish(g.ctx, subject, data)
	if err != nil {
		g.t.Fatalf("publish to %s: %v", subject, err)
	}
	return ack.Sequence
}

// pubMini and pubHeader publish a message to the replica's streams and
// return its stream sequence number.
func (g *tamperRig) pubMini(data []byte) uint64   { return g.publish("kestrel.mini", data) }
func (g *tamperRig) pubHeader(data []byte) uint64 { return g.publish("kestrel.headers", data) }

// blockOf is the block holding mini-block idx.
func (g *tamperRig) blockOf(idx uint64) uint64 {
	g.t.Helper()
	for n := g.bootBlock + 1; n <= g.lastTxBlock; n++ {
		if g.header[n].FirstMini <= idx && idx <= g.header[n].LastMini {
			return n
		}
	}
	g.t.Fatalf("mini-block %d is in no block up to %d", idx, g.lastTxBlock)
	return 0
}

// advance publishes the genuine messages up to the end of block upTo, each
// block's header after its mini-blocks, and waits for the replica to seal it.
func (g *tamperRig) advance(upTo uint64) {
	g.t.Helper()
	for ; g.nextHeader <= upTo; g.nextHeader++ {
		for ; g.nextMini <= g.header[g.nextHeader].LastMini; g.nextMini++ {
			g.pubMini(g.miniMsg[g.nextMini])
		}
		g.pubHeader(g.headerMsg[g.nextHeader])
	}
	node := g.r.Node()
	waitUntil(g.t, 20*time.Second, fmt.Sprintf("block %d sealed", upTo), func() bool { return node.HeadNumber() >= upTo })
	if node.HeadNumber() != upTo || node.MiniBlockHead() != g.header[upTo].LastMini {
		g.t.Fatalf("after block %d the replica is at block %d, mini-block %d (stats %+v)", upTo, node.HeadNumber(), node.MiniBlockHead(), g.r.Stats())
	}
}

// mismatchAndResume publishes the genuine chain up to block bad-1, then block
// bad's mini-blocks with the last one's diff changed and signed with the real
// sequencer key, then bad's genuine header: the replica halts on the state
// root. A replica reopened on the data directory must start from block bad-1,
// follow the genuine stream to the sequencer's head and answer as it does; and
// once more after a restart.
func (g *tamperRig) mismatchAndResume(bad uint64, snapshotAtBad bool) {
	t, r := g.t, g.r
	node := r.Node()
	if !snapshotAtBad {
		g.advance(bad - 1)
	}
	for k := g.nextHeader; snapshotAtBad && k < bad; k++ {
		// Block by block, each snapshot done before the next block: a node
		// skips the snapshot of a block handed off while it writes one, and
		// the one of block bad must start.
		g.advance(k)
		waitUntil(t, 20*time.Second, fmt.Sprintf("snapshot of block %d", k), func() bool {
			return logLine(g.logs.String(), `msg="Wrote state snapshot"`, fmt.Sprintf("block=%d ", k)) != ""
		})
	}
	for ; g.nextMini < g.header[bad].LastMini; g.nextMini++ {
		g.pubMini(g.miniMsg[g.nextMini])
	}
	mb, err := stream.NewDecoder().MiniBlock(g.miniMsg[g.header[bad].LastMini])
	if err != nil {
		t.Fatal(err)
	}
	tamperBalance(mb)
	if err := mb.Sign(sequencer.DevSequencerKey()); err != nil {
		t.Fatal(err)
	}
	forged, err := stream.NewEncoder().MiniBlock(mb)
	if err != nil {
		t.Fatal(err)
	}
	g.pubMini(forged)
	g.pubHeader(g.headerMsg[bad])
	select {
	case err := <-r.Fatal():
		if !errors.Is(err, sequencer.ErrMismatch) || !strings.Contains(err.Error(), "state root") {
			t.Fatalf("halted with %v, want a state root mismatch", err)
		}
		t.Logf("halted: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatalf("the replica did not halt on block %d (block %d, mini-block %d, stats %+v)", bad, node.HeadNumber(), node.MiniBlockHead(), r.Stats())
	}
	if node.HeadNumber() != bad-1 {
		t.Fatalf("halted replica at block %d, want %d", node.HeadNumber(), bad-1)
	}
	if snapshotAtBad {
		// Give a snapshot of the unverified block the time to complete (it
		// need not: a node may as well never write it).
		deadline := time.Now().Add(3 * time.Second)
		for logLine(g.logs.String(), `msg="Wrote state snapshot"`, fmt.Sprintf("block=%d ", bad)) == "" && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := r.Stop(context.Background()); err != nil && !errors.Is(err, sequencer.ErrMismatch) {
		t.Fatalf("stop the halted replica: %v", err)
	}

	// The data directory keeps only verified blocks: a replica on it resumes
	// after block bad-1 and, following the genuine stream, converges.
	cfg := replicaConfig(g.seq, g.dir)
	cfg.Stream.Name = "SRC"
	for restart := 0; restart < 2; restart++ {
		r2, err := replica.New(context.Background(), cfg, g.log.With("node", fmt.Sprintf("replica%d", restart+2)))
		if err != nil {
			t.Fatalf("reopen the replica: %v", err)
		}
		t.Cleanup(func() { _ = r2.Stop(context.Background()) })
		if r2.Bootstrapped() != nil {
			t.Fatal("the reopened replica bootstrapped again")
		}
		if n, mi := r2.Node().HeadNumber(), r2.Node().MiniBlockHead(); restart == 0 && (n != bad-1 || mi != g.header[bad-1].LastMini) {
			t.Fatalf("reopened replica at block %d, mini-block %d; want the last verified block %d, mini-block %d", n, mi, bad-1, g.header[bad-1].LastMini)
		}
		if err := r2.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		rc := dial(t, r2.RPCAddr())
		checkConverged(t, g.bootBlock+1, g.sc, rc, dedupe(g.addrs), g.txs)
		select {
		case err := <-r2.Fatal():
			t.Fatalf("reopened replica halted: %v", err)
		default:
		}
		if err := r2.Stop(context.Background()); err != nil {
			t.Fatalf("stop the reopened replica: %v", err)
		}
	}
}

// tamperBalance changes one balance in a mini-block's diff (adding an account
// when it changes none that can hold one).
func tamperBalance(mb *chain.MiniBlock) {
	if mb.Diff == nil {
		mb.Diff = new(chain.StateDiff)
	}
	for i := range mb.Diff.Accounts {
		if a := &mb.Diff.Accounts[i]; !a.Deleted {
			a.Balance.AddUint64(&a.Balance, 1)
			return
		}
	}
	mb.Diff.Accounts = append(mb.Diff.Accounts, chain.AccountDiff{Address: randomAddr("tampered", 0), Balance: *uint256.NewInt(1), CodeHash: types.EmptyCodeHash})
	mb.Diff.Sort()
}

// logLine returns the first line of logs that holds every part.
func logLine(logs string, parts ...string) string {
next:
	for _, line := range strings.Split(logs, "\n") {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue next
			}
		}
		return line
	}
	return ""
}

// waitUntil polls cond until it holds, failing the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
