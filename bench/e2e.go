package bench

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/kestrel-l2/kestrel/sequencer"
	"github.com/kestrel-l2/kestrel/stream"
)

// NodeOptions configure an in-process sequencer.
type NodeOptions struct {
	// Dir is where the node's directory is created (os.TempDir() if empty). It
	// should be a real disk: the node fsyncs every mini-block.
	Dir string
	// MiniBlockInterval and BlockInterval default to the sequencer's defaults.
	MiniBlockInterval, BlockInterval time.Duration
	// Logger receives the node's logs (discarded if nil).
	Logger *slog.Logger
	// Stream, when set, publishes the diff stream (embedded server unless it
	// has a URL).
	Stream *stream.Config
	// NoSnapshots keeps only the genesis snapshot.
	NoSnapshots bool
	// RetainRoots overrides --state.retain-roots (0: the default).
	RetainRoots int
}

// Node is an in-process sequencer started for one run.
type Node struct {
	Seq *sequencer.Sequencer
	dir string
}

// URL is the node's JSON-RPC endpoint.
func (n *Node) URL() string { return "http://" + n.Seq.RPCAddr() }

// Stop stops the node and removes its directory.
func (n *Node) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := n.Seq.Stop(ctx)
	return errors.Join(err, os.RemoveAll(n.dir))
}

// StartNode starts a sequencer with the workload's genesis (written as a JSON
// file) and a fresh data directory, the RPC server on 127.0.0.1:0 and every other
// setting at its default.
func StartNode(ctx context.Context, w *Workload, opts NodeOptions) (*Node, error) {
	dir, err := os.MkdirTemp(opts.Dir, "kestrel-bench-")
	if err != nil {
		return nil, err
	}
	gen, err := json.MarshalIndent(w.Genesis(), "", " ")
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "genesis.json"), gen, 0o644)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("write genesis: %w", err)
	}
	cfg := sequencer.DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.GenesisFile = filepath.Join(dir, "genesis.json")
	cfg.RPC.Addr = "127.0.0.1:0"
	if opts.MiniBlockInterval > 0 {
		cfg.MiniBlockInterval = opts.MiniBlockInterval
	}
	if opts.BlockInterval > 0 {
		cfg.BlockInterval = opts.BlockInterval
	}
	cfg.Stream = opts.Stream
	if opts.RetainRoots > 0 {
		cfg.RetainRoots = opts.RetainRoots
	}
	if opts.NoSnapshots {
		cfg.SnapshotEvery = 0
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	seq, err := sequencer.New(ctx, cfg, logger)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := seq.Start(ctx); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return &Node{Seq: seq, dir: dir}, nil
}

// SendOptions configure the throughput phase.
type SendOptions struct {
	// Conns is the number of concurrent keep-alive connections sending batches (4).
	Conns int
	// Batch is the number of eth_sendRawTransaction calls per JSON-RPC batch (500).
	Batch int
	// PollInterval is the pause between two polls of the senders' pending nonces
	// once everything is sent (1ms).
	PollInterval time.Duration
	// Timeout bounds the whole phase (10 minutes).
	Timeout time.Duration
	// Profile, when set, receives a CPU profile of the phase (sending, waiting,
	// not the verification). Client goroutines carry the pprof label
	// bench=client.
	Profile string
	// StateTag is the block tag whose nonces show a transaction done:
	// "pending" (the default) on Kestrel, where it is the newest durable
	// mini-block; "latest" on go-ethereum, whose pending state includes its
	// pool.
	StateTag string
	// Sample, when set, is called every 100 ms during the phase (throughput
	// over time).
	Sample func(elapsed time.Duration)
}

func (o *SendOptions) defaults() {
	if o.Conns <= 0 {
		o.Conns = 4
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	o.Batch = min(o.Batch, maxBatch)
	if o.PollInterval <= 0 {
		o.PollInterval = time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
}

// ThroughputResult is one end-to-end throughput run.
type ThroughputResult struct {
	Txs int `json:"txs"`
	// Elapsed runs from the first send to the poll answer showing the last
	// transaction in a durable mini-block (an upper bound, by at most one poll).
	Elapsed  time.Duration `json:"elapsedNs"`
	TxPerSec float64       `json:"txPerSec"`
	// Admitted is when the node had accepted every transaction into its pool.
	Admitted      time.Duration `json:"admittedNs"`
	AdmitTxPerSec float64       `json:"admitTxPerSec"`
	// CPU is the process's CPU time from the first send to the last ack: the
	// in-process node and the bench client together (for an external node, the
	// client only). TxPerCPUSec = Txs / CPU.
	CPU            time.Duration `json:"cpuNs"`
	TxPerCPUSec    float64       `json:"txPerCpuSec"`
	Retries        int           `json:"retries"`
	Polls          int           `json:"polls"`
	Batches        int           `json:"batches"`
	Conns          int           `json:"conns"`
	BatchSize      int           `json:"batchSize"`
	VerifiedStates int           `json:"verifiedAccounts"`
}

type sendState struct {
	c       *rpcClient
	txs     []RawTx
	retryMu sync.Mutex
	retry   []int
	retries atomic.Int64
	fatal   atomic.Pointer[error]
}

func (s *sendState) setFatal(err error) { s.fatal.CompareAndSwap(nil, &err) }

// sendBatch sends txs[idx...] in one batch and sorts out the answers.
func (s *sendState) sendBatch(idx []int, body []byte, isRetry bool) (backoff bool) {
	raw, err := s.c.post(body, 5*time.Minute)
	if err != nil {
		s.setFatal(fmt.Errorf("send batch: %w", err))
		return false
	}
	if !bytes.Contains(raw, []byte(`"error"`)) {
		return false
	}
	var rs []rpcResponse
	if err := json.Unmarshal(raw, &rs); err != nil {
		s.setFatal(fmt.Errorf("decode send response: %w (%.200s)", err, raw))
		return false
	}
	var again []int
	for _, r := range rs {
		if r.Error == nil {
			continue
		}
		if r.ID < 0 || r.ID >= len(idx) {
			s.setFatal(fmt.Errorf("send response with unexpected id %d", r.ID))
			return false
		}
		switch class := classifySendError(r.Error.Message); {
		case class == sendRetry:
			again = append(again, idx[r.ID])
		case class == sendDone && isRetry:
		default:
			t := s.txs[idx[r.ID]]
			s.setFatal(fmt.Errorf("tx %s (nonce %d) rejected: %s", t.Hash, t.Nonce, r.Error.Message))
			return false
		}
	}
	if len(again) > 0 {
		s.retries.Add(int64(len(again)))
		s.retryMu.Lock()
		s.retry = append(s.retry, again...)
		s.retryMu.Unlock()
	}
	return len(again) > 0
}

// sendBody builds one JSON-RPC batch of eth_sendRawTransaction calls, ids 0..n-1.
func sendBody(txs []RawTx, idx []int) []byte {
	var b []byte
	b = append(b, '[')
	for i, k := range idx {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"jsonrpc":"2.0","id":%d,"method":"eth_sendRawTransaction","params":["`, i)
		b = appendHex(b, txs[k].Raw)
		b = append(b, `"]}`...)
	}
	return append(b, ']')
}

// expectedNonces is each sending sender's nonce before and after txs.
func expectedNonces(w *Workload, txs []RawTx) (addrs []common.Address, from, to []uint64) {
	first := make([]uint64, len(w.Senders))
	sent := make([]uint64, len(w.Senders))
	for _, t := range txs {
		if sent[t.Sender] == 0 || t.Nonce < first[t.Sender] {
			first[t.Sender] = t.Nonce
		}
		sent[t.Sender]++
	}
	for i, s := range w.Senders {
		if sent[i] > 0 {
			addrs = append(addrs, s.Addr)
			from = append(from, first[i])
			to = append(to, first[i]+sent[i])
		}
	}
	return addrs, from, to
}

func (w *Workload) balanceToken() *common.Address {
	if w.Config.Kind == KindERC20 {
		return &w.Token
	}
	return nil
}

// RunThroughput sends txs to the node at url as fast as it takes them, in
// JSON-RPC batches over several keep-alive connections, and measures the time
// from the first send until the node reports every sender's pending nonce (on
// Kestrel: the state after the newest durable mini-block) at its final value.
// Afterwards it checks every recipient's balance (ETH, or the token's balanceOf)
// grew by exactly what txs send it, so a reverted transaction cannot pass. The
// request bodies are built before the clock starts.
func RunThroughput(ctx context.Context, url string, w *Workload, txs []RawTx, opts SendOptions) (*ThroughputResult, error) {
	opts.defaults()
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	c, err := newRPCClient(url, opts.Conns+2)
	if err != nil {
		return nil, err
	}
	defer c.close()
	c.tag = opts.StateTag

	// Pre-state checks and reads (untimed).
	addrs, from, want := expectedNonces(w, txs)
	have, err := c.nonces(addrs)
	if err != nil {
		return nil, err
	}
	for i, a := range addrs {
		if have[i] != from[i] {
			return nil, fmt.Errorf("sender %s has nonce %d before the run, the workload starts at %d", a, have[i], from[i])
		}
	}
	received := w.Received(txs)
	recIdx := make([]int, 0, len(received))
	for j := range received {
		recIdx = append(recIdx, j)
	}
	sort.Ints(recIdx)
	recAddrs := make([]common.Address, len(recIdx))
	for k, j := range recIdx {
		recAddrs[k] = w.Recipients[j]
	}
	before, err := c.balances(recAddrs, w.balanceToken())
	if err != nil {
		return nil, err
	}

	// Batches of consecutive transactions. The workload goes round by round (one
	// transaction of every sender per round), so each sender's nonces arrive in
	// order and far less than the pool's nonce-gap limit apart.
	var bodies [][]byte
	var batches [][]int
	for first := 0; first < len(txs); first += opts.Batch {
		idx := make([]int, 0, opts.Batch)
		for k := first; k < min(first+opts.Batch, len(txs)); k++ {
			idx = append(idx, k)
		}
		batches = append(batches, idx)
		bodies = append(bodies, sendBody(txs, idx))
	}
	// Open the connections before the clock starts.
	var warm sync.WaitGroup
	for range opts.Conns {
		warm.Add(1)
		go func() { defer warm.Done(); _ = c.call(nil, "eth_chainId") }()
	}
	warm.Wait()

	stopProfile := func() {}
	if opts.Profile != "" {
		if stopProfile, err = startProfile(opts.Profile); err != nil {
			return nil, err
		}
	}

	s := &sendState{c: c, txs: txs}
	res := &ThroughputResult{Txs: len(txs), Batches: len(batches), Conns: opts.Conns, BatchSize: opts.Batch}
	var (
		done time.Time
		next atomic.Int64
		wg   sync.WaitGroup
	)
	cpu0 := processCPU()
	start := time.Now()
	stopSample := func() {}
	if opts.Sample != nil {
		sctx, stop := context.WithCancel(ctx)
		sampled := make(chan struct{})
		// The series starts at zero and ends with a sample at the end of the
		// phase, however short it was.
		stopSample = func() { stop(); <-sampled; opts.Sample(time.Since(start)) }
		defer stop()
		opts.Sample(0)
		go func() {
			defer close(sampled)
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-sctx.Done():
					return
				case <-t.C:
					opts.Sample(time.Since(start))
				}
			}
		}()
	}
	pprof.Do(ctx, pprof.Labels("bench", "client"), func(ctx context.Context) {
		for range opts.Conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for s.fatal.Load() == nil && ctx.Err() == nil {
					k := int(next.Add(1) - 1)
					if k >= len(batches) {
						return
					}
					if s.sendBatch(batches[k], bodies[k], false) {
						time.Sleep(5 * time.Millisecond) // back-pressure
					}
				}
			}()
		}
		wg.Wait()
		// Resend what met back-pressure, in workload order, until all is in.
		for s.fatal.Load() == nil && ctx.Err() == nil {
			s.retryMu.Lock()
			again := s.retry
			s.retry = nil
			s.retryMu.Unlock()
			if len(again) == 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
			slices.Sort(again)
			for first := 0; first < len(again); first += opts.Batch {
				idx := again[first:min(first+opts.Batch, len(again))]
				s.sendBatch(idx, sendBody(txs, idx), true)
			}
		}
		res.Admitted = time.Since(start)
		// Poll the senders not yet at their final nonce.
		remAddrs, remWant := addrs, want
		var lastSum uint64
		lastProgress := time.Now()
		for s.fatal.Load() == nil {
			if err := ctx.Err(); err != nil {
				s.setFatal(fmt.Errorf("waiting for %d senders: %w", len(remAddrs), errTimeout))
				break
			}
			got, err := c.nonces(remAddrs)
			res.Polls++
			if err != nil {
				s.setFatal(err)
				break
			}
			var sum uint64
			for _, n := range got {
				sum += n
			}
			if sum != lastSum {
				lastSum, lastProgress = sum, time.Now()
			} else if time.Since(lastProgress) > stallTimeout {
				s.setFatal(fmt.Errorf("no progress for %v with %d senders short of their final nonce (a transaction dropped?)", stallTimeout, len(remAddrs)))
				break
			}
			var na []common.Address
			var nw []uint64
			for i := range got {
				if got[i] < remWant[i] {
					na, nw = append(na, remAddrs[i]), append(nw, remWant[i])
				} else if got[i] > remWant[i] {
					s.setFatal(fmt.Errorf("sender %s nonce %d beyond the expected %d", remAddrs[i], got[i], remWant[i]))
				}
			}
			if len(na) == 0 {
				done = time.Now()
				break
			}
			remAddrs, remWant = na, nw
			time.Sleep(opts.PollInterval)
		}
	})
	res.CPU = processCPU() - cpu0
	stopSample()
	stopProfile()
	if p := s.fatal.Load(); p != nil {
		return nil, *p
	}
	res.Elapsed = done.Sub(start)
	if res.CPU > 0 {
		res.TxPerCPUSec = float64(len(txs)) / res.CPU.Seconds()
	}
	res.TxPerSec = float64(len(txs)) / res.Elapsed.Seconds()
	res.AdmitTxPerSec = float64(len(txs)) / res.Admitted.Seconds()
	res.Retries = int(s.retries.Load())

	// Every transaction succeeded: the recipients got exactly what was sent.
	after, err := c.balances(recAddrs, w.balanceToken())
	if err != nil {
		return nil, err
	}
	for k, j := range recIdx {
		got := new(big.Int).Sub(after[k], before[k])
		if got.Cmp(received[j]) != 0 {
			return nil, fmt.Errorf("recipient %s received %v, want %v (a transaction failed?)", recAddrs[k], got, received[j])
		}
	}
	res.VerifiedStates = len(addrs) + len(recAddrs)
	return res, nil
}

// LatencyOptions configure the latency phase.
type LatencyOptions struct {
	// Rate is the offered load in transactions per second.
	Rate int
	// SyncTimeout is the timeout passed to eth_sendRawTransactionSync (10s).
	SyncTimeout time.Duration
	// MaxConns caps the client's connections (8192); every in-flight call holds one.
	MaxConns int
	// Profile, when set, receives a CPU profile of the phase.
	Profile string
}

// LatencyResult is one latency run.
type LatencyResult struct {
	Offered float64 `json:"offeredTxPerSec"`
	Sent    int     `json:"sent"`
	OK      int     `json:"ok"`
	Errors  int     `json:"errors"`
	// ErrorSamples counts errors by message.
	ErrorSamples map[string]int `json:"errorSamples,omitempty"`
	// Achieved is successful calls per second, first scheduled send to last answer.
	Achieved float64 `json:"achievedTxPerSec"`
	// Latency of successful calls from their scheduled send time (so client-side
	// delays count: no coordinated omission) to the receipt.
	P50 time.Duration `json:"p50Ns"`
	P90 time.Duration `json:"p90Ns"`
	P99 time.Duration `json:"p99Ns"`
	Max time.Duration `json:"maxNs"`
	// Service latency: from the actual send to the receipt.
	ServiceP50 time.Duration `json:"serviceP50Ns"`
	ServiceP99 time.Duration `json:"serviceP99Ns"`
	// Late counts calls sent more than 1ms after their slot.
	Late int `json:"late"`

	// Per call, for figures derived afterwards: call i was due at start +
	// i*period; ok[i] says it succeeded, after lat[i].
	start  time.Time
	period time.Duration
	ok     []bool
	lat    []time.Duration
}

// slot is when call i was due.
func (r *LatencyResult) slot(i int) time.Time { return r.start.Add(time.Duration(i) * r.period) }

// latenciesMs returns the successful calls' latencies in milliseconds.
func (r *LatencyResult) latenciesMs() []float64 {
	var out []float64
	for i, ok := range r.ok {
		if ok {
			out = append(out, msf(r.lat[i]))
		}
	}
	return out
}

// RunLatency offers eth_sendRawTransactionSync calls open loop: call i is sent
// at start + i/rate on its own goroutine and connection, whether or not earlier
// calls have answered, and its latency runs from that slot to the receipt.
func RunLatency(ctx context.Context, url string, txs []RawTx, opts LatencyOptions) (*LatencyResult, error) {
	if opts.Rate <= 0 {
		return nil, errors.New("latency: rate must be positive")
	}
	if opts.SyncTimeout <= 0 {
		opts.SyncTimeout = 10 * time.Second
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 8192
	}
	c, err := newRPCClient(url, opts.MaxConns)
	if err != nil {
		return nil, err
	}
	defer c.close()
	n := len(txs)
	bodies := make([][]byte, n)
	for i, t := range txs {
		b := []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransactionSync","params":["`)
		b = appendHex(b, t.Raw)
		bodies[i] = fmt.Appendf(b, `",%d]}`, opts.SyncTimeout.Milliseconds())
	}
	// Open connections for up to 100 ms worth of calls in flight before the clock
	// starts; more are dialled if latency grows beyond that.
	var warm sync.WaitGroup
	for range min(opts.Rate/10+8, opts.MaxConns) {
		warm.Add(1)
		go func() { defer warm.Done(); _ = c.call(nil, "eth_chainId") }()
	}
	warm.Wait()

	if opts.Profile != "" {
		stop, err := startProfile(opts.Profile)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	var (
		lat, svc = make([]time.Duration, n), make([]time.Duration, n)
		ok       = make([]bool, n)
		errMu    sync.Mutex
		errs     = map[string]int{}
		lastEnd  atomic.Int64
		late     atomic.Int64
		wg       sync.WaitGroup
	)
	period := time.Second / time.Duration(opts.Rate)
	start := time.Now().Add(5 * time.Millisecond)
	call := func(i int, slot time.Time) {
		defer wg.Done()
		sendAt := time.Now()
		if sendAt.Sub(slot) > time.Millisecond {
			late.Add(1)
		}
		raw, err := c.post(bodies[i], opts.SyncTimeout+10*time.Second)
		end := time.Now()
		if e := end.UnixNano(); e > lastEnd.Load() {
			for {
				cur := lastEnd.Load()
				if e <= cur || lastEnd.CompareAndSwap(cur, e) {
					break
				}
			}
		}
		msg := ""
		if err != nil {
			msg = err.Error()
		} else {
			var r struct {
				Result *struct {
					Status hexutil.Uint64 `json:"status"`
				} `json:"result"`
				Error *rpcError `json:"error"`
			}
			switch err := json.Unmarshal(raw, &r); {
			case err != nil:
				msg = "bad response: " + err.Error()
			case r.Error != nil:
				msg = r.Error.Message
			case r.Result == nil:
				msg = "no receipt"
			case r.Result.Status != 1:
				msg = "receipt status 0"
			}
		}
		if msg != "" {
			errMu.Lock()
			if len(msg) > 120 {
				msg = msg[:120]
			}
			errs[msg]++
			errMu.Unlock()
			return
		}
		ok[i], lat[i], svc[i] = true, end.Sub(slot), end.Sub(sendAt)
	}
	pprof.Do(ctx, pprof.Labels("bench", "client"), func(ctx context.Context) {
		for i := 0; i < n && ctx.Err() == nil; {
			due := int(time.Since(start)/period) + 1
			if time.Now().Before(start) {
				due = 0
			}
			for ; i < min(due, n); i++ {
				wg.Add(1)
				go call(i, start.Add(time.Duration(i)*period))
			}
			if i < n {
				time.Sleep(time.Until(start.Add(time.Duration(i) * period)))
			}
		}
		wg.Wait()
	})
	res := &LatencyResult{Offered: float64(opts.Rate), Sent: n, ErrorSamples: errs, Late: int(late.Load()),
		start: start, period: period, ok: ok, lat: lat}
	var okLat, okSvc []time.Duration
	for i := range ok {
		if ok[i] {
			okLat, okSvc = append(okLat, lat[i]), append(okSvc, svc[i])
		}
	}
	res.OK = len(okLat)
	res.Errors = n - res.OK
	if res.OK > 0 {
		span := time.Unix(0, lastEnd.Load()).Sub(start)
		res.Achieved = float64(res.OK) / span.Seconds()
		slices.Sort(okLat)
		slices.Sort(okSvc)
		res.P50, res.P90, res.P99, res.Max = percentile(okLat, 50), percentile(okLat, 90), percentile(okLat, 99), okLat[len(okLat)-1]
		res.ServiceP50, res.ServiceP99 = percentile(okSvc, 50), percentile(okSvc, 99)
	}
	if len(errs) == 0 {
		res.ErrorSamples = nil
	}
	return res, ctx.Err()
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}

// summarizeErrors renders error counts compactly.
func summarizeErrors(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%d× %s", v, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// appendHex appends 0x-prefixed hex.
func appendHex(dst, b []byte) []byte {
	dst = append(dst, "0x"...)
	return hex.AppendEncode(dst, b)
}

// startProfile starts a CPU profile into path.
func startProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
