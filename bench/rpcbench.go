package bench

// The read-path RPC benchmark (`kestrel bench rpc`): the same state served by
// Kestrel (an in-process sequencer, fasthttp JSON-RPC) and by go-ethereum's RPC
// stack (GethNode: node.Node's HTTP server over eth.Ethereum, in this process
// too), driven by one load generator over loopback:
//
//  1. State. An ERC-20 workload with Accounts senders: every sender is funded
//     and holds the token. Both nodes start from the same genesis (GethGenesis
//     converts it), then receive the same Txs pre-signed transfers: Kestrel
//     until they are in sealed blocks, go-ethereum until SimulatedBeacon
//     blocks hold them all. Both must then answer the same balances, token
//     balances, nonces, account proofs (fields), token storage root and
//     receipts for a sample, or the run fails.
//  2. Closed loop. For each method, Conns keep-alive connections each send
//     their next pre-built request as soon as the previous one is answered,
//     for Warmup (discarded) then Duration; every answer must be HTTP 200 with
//     a result per call and no error.
//  3. Equal load. For each method, requests are offered open loop at
//     OpenPercent of the lower of the two closed-loop medians; latency runs from
//     each request's scheduled time.
//  4. WebSocket. Kestrel alone, producing mini-blocks every 10 ms under a
//     steady background of transfers: doubling counts of miniBlocks
//     subscribers until one falls behind (rpcbench_ws.go).
//
// The two targets are never measured at the same time: per run and method the
// second target follows the first, and the order flips every run.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/valyala/fasthttp"

	"github.com/kestrel-l2/kestrel/contracts"
)

// RPC benchmark defaults (the figures where it gives them).
const (
	DefaultRPCAccounts    = 100_000
	DefaultRPCTxs         = 2_000
	DefaultRPCConns       = 32
	DefaultRPCDuration    = 5 * time.Second
	DefaultRPCWarmup      = 500 * time.Millisecond
	DefaultRPCRuns        = 3
	DefaultRPCOpenPercent = 50
	DefaultWSStart        = 50
	DefaultWSMax          = 3200
	DefaultWSDuration     = 3 * time.Second
	DefaultWSLag          = 100 * time.Millisecond
	DefaultWSTxRate       = 2_000
	DefaultWSRefine       = 2
)

// rpcBodies is how many distinct pre-built requests each method cycles through.
const rpcBodies = 4096

// The targets' names in the report.
const (
	TargetKestrel = "kestrel"
	TargetGeth    = "geth"
)

// RPCOptions configure the RPC benchmark (RunRPC).
type RPCOptions struct {
	// Accounts is the number of funded accounts, each holding the ERC-20.
	Accounts int
	// Txs is the number of ERC-20 transfers both nodes include before the
	// measurements (their receipts are what eth_getTransactionReceipt asks for).
	Txs int
	// Conns is the closed loop's concurrent keep-alive connections, the same
	// for both targets.
	Conns int
	// Duration is each measurement's length after Warmup (closed and open loop).
	Duration, Warmup time.Duration
	// Runs repeats every measurement on both targets; medians are reported.
	Runs int
	// OpenPercent is the equal-load phase's offered rate, in percent of the
	// lower of the two closed-loop medians (0: skip the phase).
	OpenPercent int
	// Methods are the method keys to measure (RPCMethodKeys; all if empty).
	Methods []string
	// Seed derives every key, address, transaction and request.
	Seed uint64
	// WSStart and WSMax bound the doubling series of WebSocket subscriber
	// counts (WSMax 0: skip the WebSocket phase).
	WSStart, WSMax int
	// WSDuration is each subscriber count's measuring window; WSLag the p99 lag
	// above which a subscriber has fallen behind.
	WSDuration, WSLag time.Duration
	// WSRefine is how many bisection steps follow the doubling series, between
	// the last count that kept up and the first that did not.
	WSRefine int
	// WSTxRate is the background load (transfers per second) that keeps every
	// mini-block non-empty during the WebSocket phase.
	WSTxRate int
	// Quick records that the quick preset was used.
	Quick bool
	// Dir is where Kestrel's data directory is created (os.TempDir() if empty).
	Dir string
	// CPUProfile, when set, adds an untimed closed-loop run on Kestrel of each
	// method ProfileMethods selects, with a CPU profile written to CPUProfile
	// with "-METHOD" inserted before the extension.
	CPUProfile string
	// ProfileMethods is "missed" (methods where Kestrel is below its target),
	// "all", or a comma-separated list of method keys.
	ProfileMethods string
	// NodeLogger receives Kestrel's logs (discarded if nil).
	NodeLogger *slog.Logger
	// Progress receives progress lines (discarded if nil).
	Progress io.Writer
}

// DefaultRPCOptions are the full benchmark's settings.
func DefaultRPCOptions() RPCOptions {
	return RPCOptions{
		Accounts: DefaultRPCAccounts, Txs: DefaultRPCTxs, Conns: DefaultRPCConns, Duration: DefaultRPCDuration,
		Warmup: DefaultRPCWarmup, Runs: DefaultRPCRuns, OpenPercent: DefaultRPCOpenPercent, Seed: 1,
		WSStart: DefaultWSStart, WSMax: DefaultWSMax, WSDuration: DefaultWSDuration, WSLag: DefaultWSLag,
		WSTxRate: DefaultWSTxRate, WSRefine: DefaultWSRefine, ProfileMethods: "missed",
	}
}

// QuickRPCOptions is a small, short preset for smoke tests: 1,000 accounts, 200
// transfers, 0.3 s per method, one run, 1 to 4 WebSocket subscribers.
func QuickRPCOptions() RPCOptions {
	o := DefaultRPCOptions()
	o.Accounts, o.Txs, o.Conns = 1_000, 200, 8
	o.Duration, o.Warmup, o.Runs = 300*time.Millisecond, 100*time.Millisecond, 1
	o.WSStart, o.WSMax, o.WSDuration, o.WSTxRate = 1, 4, 500*time.Millisecond, 500
	o.Quick = true
	return o
}

func (o *RPCOptions) check() error {
	switch {
	case o.Accounts < 1 || o.Txs < 1 || o.Conns < 1 || o.Runs < 1:
		return errors.New("accounts, txs, conns and runs must be positive")
	case o.Duration <= 0 || o.Warmup < 0:
		return errors.New("duration must be positive and warmup not negative")
	case o.OpenPercent < 0 || o.OpenPercent > 100:
		return errors.New("open-loop percent must be 0..100")
	case o.WSMax < 0 || (o.WSMax > 0 && (o.WSStart < 1 || o.WSStart > o.WSMax)):
		return errors.New("WebSocket subscriber counts: want 1 <= start <= max (max 0 skips the phase)")
	case o.WSMax > 0 && (o.WSDuration <= 0 || o.WSLag <= 0 || o.WSTxRate < 1 || o.WSRefine < 0):
		return errors.New("WebSocket duration, lag threshold and transaction rate must be positive, refinement steps not negative")
	}
	for _, k := range o.Methods {
		if methodByKey(k) == nil {
			return fmt.Errorf("unknown method %q (want %s)", k, strings.Join(RPCMethodKeys(), ", "))
		}
	}
	switch o.ProfileMethods {
	case "", "missed", "all":
	default:
		for _, k := range strings.Split(o.ProfileMethods, ",") {
			if methodByKey(strings.TrimSpace(k)) == nil {
				return fmt.Errorf("profile methods: unknown method %q", k)
			}
		}
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return nil
}

// rpcFixture is what request bodies are drawn from.
type rpcFixture struct {
	holders []common.Address // funded accounts holding the token
	token   common.Address
	txs     []common.Hash // included transactions
}

// rpcMethod is one measured request shape.
type rpcMethod struct {
	key, name string
	// calls is the JSON-RPC calls per HTTP request (a batch has several).
	calls int
	// target is the throughput ratio Kestrel/geth the issue asks for (0: none).
	target float64
	// call appends the request's call(s) with ids from 1.
	call func(dst []byte, r *rand.Rand, f *rpcFixture) []byte
}

type callArgs struct {
	To   common.Address `json:"to"`
	Data hexutil.Bytes  `json:"data"`
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func mustAppendCall(dst []byte, id int, method string, params ...any) []byte {
	out, err := appendCall(dst, id, method, params)
	if err != nil {
		panic(err) // the params are fixed types that always marshal
	}
	return out
}

func callBalance(dst []byte, id int, r *rand.Rand, f *rpcFixture) []byte {
	return mustAppendCall(dst, id, "eth_getBalance", pick(r, f.holders), "latest")
}

func callBalanceOf(dst []byte, id int, r *rand.Rand, f *rpcFixture) []byte {
	return mustAppendCall(dst, id, "eth_call", callArgs{To: f.token, Data: contracts.ERC20BalanceOfData(pick(r, f.holders))}, "latest")
}

func callProof(dst []byte, id int, r *rand.Rand, f *rpcFixture) []byte {
	return mustAppendCall(dst, id, "eth_getProof", pick(r, f.holders), []common.Hash{}, "latest")
}

func callProofSlot(dst []byte, id int, r *rand.Rand, f *rpcFixture) []byte {
	return mustAppendCall(dst, id, "eth_getProof", f.token, []common.Hash{TokenBalanceSlot(pick(r, f.holders))}, "latest")
}

func callReceipt(dst []byte, id int, r *rand.Rand, f *rpcFixture) []byte {
	return mustAppendCall(dst, id, "eth_getTransactionReceipt", pick(r, f.txs))
}

func callBlockNumber(dst []byte, id int, _ *rand.Rand, _ *rpcFixture) []byte {
	return mustAppendCall(dst, id, "eth_blockNumber")
}

// batchMix is the batch's ten calls: 3 eth_getBalance, 3 balanceOf eth_calls,
// 2 receipts, 1 account proof and eth_blockNumber, interleaved.
var batchMix = [10]func([]byte, int, *rand.Rand, *rpcFixture) []byte{
	callBalance, callBalanceOf, callReceipt, callBalance, callBalanceOf, callProof, callBalance, callBalanceOf, callReceipt, callBlockNumber,
}

func single(f func([]byte, int, *rand.Rand, *rpcFixture) []byte) func([]byte, *rand.Rand, *rpcFixture) []byte {
	return func(dst []byte, r *rand.Rand, fx *rpcFixture) []byte { return f(dst, 1, r, fx) }
}

// rpcMethods are the measured methods in report order.
var rpcMethods = []*rpcMethod{
	{key: "balance", name: "eth_getBalance", calls: 1, target: 3, call: single(callBalance)},
	{key: "call", name: "eth_call balanceOf", calls: 1, target: 3, call: single(callBalanceOf)},
	{key: "proof", name: "eth_getProof", calls: 1, target: 2, call: single(callProof)},
	{key: "proof-slot", name: "eth_getProof 1 slot", calls: 1, target: 2, call: single(callProofSlot)},
	{key: "receipt", name: "eth_getTransactionReceipt", calls: 1, call: single(callReceipt)},
	{key: "blocknumber", name: "eth_blockNumber", calls: 1, call: single(callBlockNumber)},
	{key: "batch", name: "batch of 10", calls: len(batchMix), call: func(dst []byte, r *rand.Rand, f *rpcFixture) []byte {
		dst = append(dst, '[')
		for i, c := range batchMix {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = c(dst, i+1, r, f)
		}
		return append(dst, ']')
	}},
}

// RPCMethodKeys lists the method keys (--methods) in report order.
func RPCMethodKeys() []string {
	keys := make([]string, len(rpcMethods))
	for i, m := range rpcMethods {
		keys[i] = m.key
	}
	return keys
}

func methodByKey(k string) *rpcMethod {
	for _, m := range rpcMethods {
		if m.key == k {
			return m
		}
	}
	return nil
}

// bodies pre-builds the method's requests from a seeded generator; both targets
// get the same ones.
func (m *rpcMethod) bodies(seed uint64, f *rpcFixture) [][]byte {
	r := rand.New(rand.NewPCG(seed, uint64(len(m.key))<<32|uint64(m.key[0])))
	out := make([][]byte, rpcBodies)
	for i := range out {
		out[i] = m.call(nil, r, f)
	}
	return out
}

var (
	strResult     = []byte(`"result":`)
	strResultNull = []byte(`"result":null`)
	strErrorKey   = []byte(`"error"`)
)

// checkAnswer accepts a JSON-RPC answer holding exactly calls non-null results
// and no error. It scans the bytes rather than decoding them, so that the
// check costs the load generator little and the same for both targets (whose
// results never contain these keys: they are hex strings and objects with
// other keys).
func checkAnswer(b []byte, calls int) error {
	if bytes.Contains(b, strErrorKey) || bytes.Contains(b, strResultNull) || bytes.Count(b, strResult) != calls {
		return fmt.Errorf("bad answer: %.300s", b)
	}
	return nil
}

// loadClient sends pre-built requests on keep-alive connections and checks the
// answers.
type loadClient struct {
	hc  *fasthttp.HostClient
	url string
}

func newLoadClient(url string, maxConns int) (*loadClient, error) {
	c, err := newRPCClient(url, maxConns)
	if err != nil {
		return nil, err
	}
	c.hc.ReadTimeout, c.hc.WriteTimeout = 30*time.Second, 30*time.Second
	return &loadClient{hc: c.hc, url: url}, nil
}

// do sends body with the given (reused) request and response and checks the
// answer.
func (c *loadClient) do(req *fasthttp.Request, resp *fasthttp.Response, body []byte, calls int) error {
	req.SetBodyRaw(body)
	if err := c.hc.DoTimeout(req, resp, 30*time.Second); err != nil {
		return err
	}
	if code := resp.StatusCode(); code != fasthttp.StatusOK {
		return fmt.Errorf("http status %d: %.200s", code, resp.Body())
	}
	return checkAnswer(resp.Body(), calls)
}

func (c *loadClient) acquire() (*fasthttp.Request, *fasthttp.Response) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI(c.url)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	return req, resp
}

func release(req *fasthttp.Request, resp *fasthttp.Response) {
	fasthttp.ReleaseRequest(req)
	fasthttp.ReleaseResponse(resp)
}

// RPCLoad is one measurement of one method on one target.
type RPCLoad struct {
	// Requests are the HTTP requests answered within the window (batches count
	// once), Calls the JSON-RPC calls they held.
	Requests int `json:"requests"`
	Calls    int `json:"calls"`
	// Window is the measured span (after the warm-up).
	Window      time.Duration `json:"windowNs"`
	ReqPerSec   float64       `json:"reqPerSec"`
	CallsPerSec float64       `json:"callsPerSec"`
	// Latency: closed loop from send to answer; open loop from the request's
	// scheduled time to the answer (client-side delays count).
	P50 time.Duration `json:"p50Ns"`
	P90 time.Duration `json:"p90Ns"`
	P99 time.Duration `json:"p99Ns"`
	Max time.Duration `json:"maxNs"`
	// Errors counts failed requests (transport errors, non-200, JSON-RPC errors,
	// missing results) over the whole phase; any makes the benchmark fail.
	Errors      int    `json:"errors"`
	ErrorSample string `json:"errorSample,omitempty"`
	// CPU is this process's CPU time during the window: the target node, the
	// other (idle) node and the load generator together. CPUPerReq = CPU /
	// Requests.
	CPU       time.Duration `json:"cpuNs"`
	CPUPerReq time.Duration `json:"cpuPerReqNs"`
	// Offered is the open loop's rate (requests/s) and Late the requests sent
	// more than 1 ms after their slot.
	Offered float64 `json:"offeredPerSec,omitempty"`
	Late    int     `json:"late,omitempty"`
	// ServiceP50 and ServiceP99 are the open loop's latency from the actual
	// send (after the generator's own scheduling delay) to the answer.
	ServiceP50 time.Duration `json:"serviceP50Ns,omitempty"`
	ServiceP99 time.Duration `json:"serviceP99Ns,omitempty"`
}

func (l *RPCLoad) finish(lat []time.Duration, calls int, window, cpu time.Duration) {
	slices.Sort(lat)
	l.Requests, l.Calls, l.Window, l.CPU = len(lat), len(lat)*calls, window, cpu
	l.ReqPerSec = float64(l.Requests) / window.Seconds()
	l.CallsPerSec = float64(l.Calls) / window.Seconds()
	if len(lat) > 0 {
		l.P50, l.P90, l.P99, l.Max = percentile(lat, 50), percentile(lat, 90), percentile(lat, 99), lat[len(lat)-1]
		l.CPUPerReq = cpu / time.Duration(len(lat))
	}
}

type errCounter struct {
	n      atomic.Int64
	sample atomic.Pointer[string]
}

func (e *errCounter) add(err error) {
	e.n.Add(1)
	msg := err.Error()
	e.sample.CompareAndSwap(nil, &msg)
}

func (e *errCounter) fill(l *RPCLoad) {
	l.Errors = int(e.n.Load())
	if p := e.sample.Load(); p != nil {
		l.ErrorSample = *p
	}
}

// cpuWindow samples the process's CPU time at from and at to.
func cpuWindow(from, to time.Time) func() time.Duration {
	var cpu0, cpu1 time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(time.Until(from))
		cpu0 = processCPU()
		time.Sleep(time.Until(to))
		cpu1 = processCPU()
	}()
	return func() time.Duration { <-done; return cpu1 - cpu0 }
}

// closedLoop runs conns workers, each sending its next request when the last
// one is answered, for warmup and then d; answers that arrive within the
// window [start+warmup, start+warmup+d] are counted. Worker i starts at body
// i*len/conns so the workers ask for different things.
func closedLoop(ctx context.Context, url string, bodies [][]byte, calls, conns int, warmup, d time.Duration) (*RPCLoad, error) {
	c, err := newLoadClient(url, conns)
	if err != nil {
		return nil, err
	}
	defer c.hc.CloseIdleConnections()
	// Open the connections before the clock starts.
	var wg sync.WaitGroup
	var errs errCounter
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := c.acquire()
			defer release(req, resp)
			if err := c.do(req, resp, bodies[i%len(bodies)], calls); err != nil {
				errs.add(err)
			}
		}()
	}
	wg.Wait()
	start := time.Now()
	from, to := start.Add(warmup), start.Add(warmup+d)
	cpu := cpuWindow(from, to)
	lats := make([][]time.Duration, conns)
	pprof.Do(ctx, pprof.Labels("bench", "client"), func(ctx context.Context) {
		for i := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, resp := c.acquire()
				defer release(req, resp)
				lat := make([]time.Duration, 0, 1024)
				k := i * len(bodies) / conns
				for ctx.Err() == nil {
					t0 := time.Now()
					err := c.do(req, resp, bodies[k], calls)
					t1 := time.Now()
					if err != nil {
						errs.add(err)
					} else if !t1.Before(from) && !t1.After(to) {
						lat = append(lat, t1.Sub(t0))
					}
					if t1.After(to) {
						break
					}
					if k++; k == len(bodies) {
						k = 0
					}
				}
				lats[i] = lat
			}()
		}
		wg.Wait()
	})
	res := &RPCLoad{}
	res.finish(slices.Concat(lats...), calls, d, cpu())
	errs.fill(res)
	return res, ctx.Err()
}

// openLoop offers requests at rate per second for warmup and then d: request i
// is sent at start + i/rate on its own goroutine whether or not earlier ones
// were answered, and its latency runs from that slot. Requests scheduled in the
// window count.
func openLoop(ctx context.Context, url string, bodies [][]byte, calls int, rate float64, warmup, d time.Duration) (*RPCLoad, error) {
	if rate <= 0 {
		return nil, errors.New("open loop: rate must be positive")
	}
	c, err := newLoadClient(url, 4096)
	if err != nil {
		return nil, err
	}
	defer c.hc.CloseIdleConnections()
	period := time.Duration(float64(time.Second) / rate)
	if period <= 0 {
		period = 1
	}
	first := int(warmup / period)
	n := first + int(d/period)
	lat, svc := make([]time.Duration, n), make([]time.Duration, n)
	var (
		errs errCounter
		late atomic.Int64
		wg   sync.WaitGroup
	)
	start := time.Now().Add(5 * time.Millisecond)
	from := start.Add(time.Duration(first) * period)
	cpu := cpuWindow(from, from.Add(d))
	send := func(i int, slot time.Time) {
		defer wg.Done()
		if time.Since(slot) > time.Millisecond {
			late.Add(1)
		}
		req, resp := c.acquire()
		defer release(req, resp)
		sent := time.Now()
		if err := c.do(req, resp, bodies[i%len(bodies)], calls); err != nil {
			errs.add(err)
			lat[i] = -1
			return
		}
		end := time.Now()
		lat[i], svc[i] = end.Sub(slot), end.Sub(sent)
	}
	pprof.Do(ctx, pprof.Labels("bench", "client"), func(ctx context.Context) {
		for i := 0; i < n && ctx.Err() == nil; {
			due := min(int(time.Since(start)/period)+1, n)
			if time.Now().Before(start) {
				due = 0
			}
			for ; i < due; i++ {
				wg.Add(1)
				go send(i, start.Add(time.Duration(i)*period))
			}
			if i < n {
				time.Sleep(time.Until(start.Add(time.Duration(i) * period)))
			}
		}
		wg.Wait()
	})
	ok := make([]time.Duration, 0, n-first)
	okSvc := make([]time.Duration, 0, n-first)
	for i, l := range lat[first:] {
		if l >= 0 {
			ok, okSvc = append(ok, l), append(okSvc, svc[first+i])
		}
	}
	slices.Sort(okSvc)
	res := &RPCLoad{Offered: rate, Late: int(late.Load())}
	res.finish(ok, calls, d, cpu())
	res.ServiceP50, res.ServiceP99 = percentile(okSvc, 50), percentile(okSvc, 99)
	errs.fill(res)
	return res, ctx.Err()
}

// RPCMethodRun is one run of one method on both targets.
type RPCMethodRun struct {
	Run     int      `json:"run"`
	First   string   `json:"measuredFirst"`
	Kestrel *RPCLoad `json:"kestrel"`
	Geth    *RPCLoad `json:"geth"`
}

// RPCMethodSummary holds medians over runs; ratios are ratios of medians.
type RPCMethodSummary struct {
	KestrelReqPerSec   float64 `json:"kestrelReqPerSec"`
	GethReqPerSec      float64 `json:"gethReqPerSec"`
	KestrelCallsPerSec float64 `json:"kestrelCallsPerSec"`
	GethCallsPerSec    float64 `json:"gethCallsPerSec"`
	// Ratio is KestrelReqPerSec / GethReqPerSec; TargetMet compares it with the
	// method's target (absent when it has none).
	Ratio     float64 `json:"ratio"`
	TargetMet *bool   `json:"targetMet,omitempty"`
	// Closed-loop latency.
	KestrelP50Ms float64 `json:"kestrelP50Ms"`
	KestrelP99Ms float64 `json:"kestrelP99Ms"`
	GethP50Ms    float64 `json:"gethP50Ms"`
	GethP99Ms    float64 `json:"gethP99Ms"`
	// CPU time of the process per request (node, idle other node and load
	// generator), in microseconds.
	KestrelCPUPerReqUs float64 `json:"kestrelCpuPerReqUs"`
	GethCPUPerReqUs    float64 `json:"gethCpuPerReqUs"`
	// Equal load (open loop at OpenRate requests/s on both): service latency
	// (send to answer) p50 and p99, and p99 from the scheduled send time
	// (adding the load generator's own scheduling delay, about half a
	// millisecond of timer granularity, the same for both).
	OpenRate             float64 `json:"openRate,omitempty"`
	OpenKestrelP50Ms     float64 `json:"openKestrelP50Ms,omitempty"`
	OpenKestrelP99Ms     float64 `json:"openKestrelP99Ms,omitempty"`
	OpenGethP50Ms        float64 `json:"openGethP50Ms,omitempty"`
	OpenGethP99Ms        float64 `json:"openGethP99Ms,omitempty"`
	OpenKestrelSlotP99Ms float64 `json:"openKestrelFromSlotP99Ms,omitempty"`
	OpenGethSlotP99Ms    float64 `json:"openGethFromSlotP99Ms,omitempty"`
	// OpenP99Ratio is OpenGethP99Ms / OpenKestrelP99Ms (above 1: Kestrel
	// lower); LowerP99 says whether Kestrel's service p99 is the lower.
	OpenP99Ratio float64 `json:"openP99GethOverKestrel,omitempty"`
	LowerP99     *bool   `json:"kestrelLowerP99,omitempty"`
}

// RPCMethodReport is everything measured for one method.
type RPCMethodReport struct {
	Key    string  `json:"key"`
	Name   string  `json:"method"`
	Calls  int     `json:"callsPerRequest"`
	Target float64 `json:"targetRatio,omitempty"`
	// Closed and Open are the runs of the closed-loop and equal-load phases.
	Closed []RPCMethodRun   `json:"closedLoop"`
	Open   []RPCMethodRun   `json:"equalLoad,omitempty"`
	Median RPCMethodSummary `json:"median"`
	bodies [][]byte
}

// RPCProfile is a CPU profile of Kestrel serving one method.
type RPCProfile struct {
	Method    string  `json:"method"`
	Path      string  `json:"path"`
	ReqPerSec float64 `json:"reqPerSec"`
	// Top is `go tool pprof -top` of the samples outside the load generator
	// (pprof label bench=client ignored); ClientShare is the generator's share.
	Top         string `json:"top,omitempty"`
	ClientShare string `json:"clientShare,omitempty"`
}

// RPCSetup describes the state both targets serve.
type RPCSetup struct {
	Accounts int `json:"accounts"`
	// TokenHolders are the accounts holding the ERC-20 (Accounts plus the
	// recipients of the transfers).
	TokenHolders int `json:"tokenHolders"`
	Txs          int `json:"txs"`
	// KestrelHead and GethHead are the newest blocks when measuring began.
	KestrelHead uint64 `json:"kestrelHead"`
	GethHead    uint64 `json:"gethHead"`
	// Verified counts the checks the two targets agreed on.
	Verified int `json:"verifiedChecks"`
	// SetupTime is from the start to the first measurement (signing, genesis,
	// sending, sealing, verifying).
	SetupTime time.Duration `json:"setupNs"`
}

// RPCSettings are the options a report was made with.
type RPCSettings struct {
	Accounts    int    `json:"accounts"`
	Txs         int    `json:"txs"`
	Conns       int    `json:"conns"`
	Duration    string `json:"duration"`
	Warmup      string `json:"warmup"`
	Runs        int    `json:"runs"`
	OpenPercent int    `json:"openPercent"`
	Seed        uint64 `json:"seed"`
	WSStart     int    `json:"wsStart"`
	WSMax       int    `json:"wsMax"`
	WSDuration  string `json:"wsDuration"`
	WSLag       string `json:"wsLag"`
	WSTxRate    int    `json:"wsTxRate"`
	WSRefine    int    `json:"wsRefine"`
	Quick       bool   `json:"quick"`
}

// RPCReport is a whole RPC benchmark.
type RPCReport struct {
	Started  time.Time     `json:"started"`
	Machine  EngineMachine `json:"machine"`
	Settings RPCSettings   `json:"settings"`
	Setup    RPCSetup      `json:"setup"`
	// Notes say how the two targets differ and what shares the machine.
	Notes     []string          `json:"notes"`
	Methods   []RPCMethodReport `json:"methods"`
	WebSocket *WSReport         `json:"webSocket,omitempty"`
	Profiles  []RPCProfile      `json:"cpuProfiles,omitempty"`
}

// RunRPC runs the RPC benchmark.
func RunRPC(ctx context.Context, o RPCOptions) (*RPCReport, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	started := time.Now()
	rep := &RPCReport{
		Started: started,
		Machine: EngineMachine{GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, NumCPU: runtime.NumCPU(),
			CPUModel: cpuModel(), GOMAXPROCS: runtime.GOMAXPROCS(0), GCPercent: gcPercent(), LoadAvg: loadAvg()},
		Settings: RPCSettings{Accounts: o.Accounts, Txs: o.Txs, Conns: o.Conns, Duration: o.Duration.String(), Warmup: o.Warmup.String(),
			Runs: o.Runs, OpenPercent: o.OpenPercent, Seed: o.Seed, WSStart: o.WSStart, WSMax: o.WSMax,
			WSDuration: o.WSDuration.String(), WSLag: o.WSLag.String(), WSTxRate: o.WSTxRate, WSRefine: o.WSRefine, Quick: o.Quick},
	}
	methods := rpcMethods
	if len(o.Methods) > 0 {
		methods = nil
		for _, m := range rpcMethods {
			if slices.Contains(o.Methods, m.key) {
				methods = append(methods, m)
			}
		}
	}

	// The workload: Txs transfers for the shared state, then the WebSocket
	// phase's background transfers (Kestrel only).
	cfg := WorkloadConfig{Kind: KindERC20, Txs: o.Txs, Extra: o.wsTxs(), Senders: o.Accounts, Seed: o.Seed}
	fmt.Fprintf(o.Progress, "rpc: signing %d transactions of %d accounts\n", cfg.Txs+cfg.Extra, cfg.Senders)
	w, err := Generate(cfg)
	if err != nil {
		return nil, err
	}
	setup := w.Throughput()
	fmt.Fprintf(o.Progress, "rpc: starting Kestrel and go-ethereum on the same %d-account genesis\n", len(w.Genesis().Alloc))
	knode, err := StartNode(ctx, w, NodeOptions{Dir: o.Dir, Logger: o.NodeLogger})
	if err != nil {
		return nil, fmt.Errorf("start kestrel: %w", err)
	}
	defer func() { _ = knode.Stop() }()
	gnode, err := StartGethNode(w.Genesis())
	if err != nil {
		return nil, fmt.Errorf("start geth: %w", err)
	}
	gethStopped := false
	defer func() {
		if !gethStopped {
			_ = gnode.Stop()
		}
	}()
	urls := map[string]string{TargetKestrel: knode.URL(), TargetGeth: gnode.URL()}

	// Both include the same transfers.
	fmt.Fprintf(o.Progress, "rpc: sending %d transfers to Kestrel\n", len(setup))
	if _, err := RunThroughput(ctx, urls[TargetKestrel], w, setup, SendOptions{Conns: 2}); err != nil {
		return nil, fmt.Errorf("kestrel setup: %w", err)
	}
	if err := waitSealed(ctx, urls[TargetKestrel]); err != nil {
		return nil, fmt.Errorf("kestrel setup: %w", err)
	}
	fmt.Fprintf(o.Progress, "rpc: sending %d transfers to go-ethereum\n", len(setup))
	if err := sendAll(urls[TargetGeth], setup); err != nil {
		return nil, fmt.Errorf("geth setup: %w", err)
	}
	if err := gnode.SealAll(ctx, 1000); err != nil {
		return nil, fmt.Errorf("geth setup: %w", err)
	}
	hashes := make([]common.Hash, len(setup))
	for i, t := range setup {
		hashes[i] = t.Hash
	}
	fix := &rpcFixture{token: w.Token, txs: hashes}
	for _, s := range w.Senders {
		fix.holders = append(fix.holders, s.Addr)
	}
	fmt.Fprintln(o.Progress, "rpc: checking that both serve the same state")
	if rep.Setup.Verified, err = verifySameState(ctx, urls[TargetKestrel], urls[TargetGeth], w, setup, o.Seed); err != nil {
		return nil, err
	}
	rep.Setup.Accounts, rep.Setup.Txs = o.Accounts, len(setup)
	rep.Setup.TokenHolders = o.Accounts + len(w.Received(setup))
	rep.Setup.GethHead = gnode.Head()
	var head hexutil.Uint64
	if err := callOnce(urls[TargetKestrel], &head, "eth_blockNumber"); err == nil {
		rep.Setup.KestrelHead = uint64(head)
	}
	rep.Setup.SetupTime = time.Since(started)
	rep.Notes = rpcNotes(gnode)

	reports := make([]RPCMethodReport, len(methods))
	for i, m := range methods {
		reports[i] = RPCMethodReport{Key: m.key, Name: m.name, Calls: m.calls, Target: m.target, bodies: m.bodies(o.Seed, fix)}
	}
	order := func(run, i int) [2]string {
		if (run+i)%2 == 1 {
			return [2]string{TargetKestrel, TargetGeth}
		}
		return [2]string{TargetGeth, TargetKestrel}
	}
	measure := func(phase string, run int, mr *RPCMethodReport, i int, f func(url string) (*RPCLoad, error)) (RPCMethodRun, error) {
		r := RPCMethodRun{Run: run}
		for j, t := range order(run, i) {
			if j == 0 {
				r.First = t
			}
			runtime.GC()
			l, err := f(urls[t])
			if err != nil {
				return r, fmt.Errorf("%s %s on %s: %w", phase, mr.Name, t, err)
			}
			if l.Errors > 0 {
				return r, fmt.Errorf("%s %s on %s: %d failed requests, e.g. %s", phase, mr.Name, t, l.Errors, l.ErrorSample)
			}
			if t == TargetKestrel {
				r.Kestrel = l
			} else {
				r.Geth = l
			}
			p50, p99 := l.P50, l.P99
			if l.Offered > 0 {
				p50, p99 = l.ServiceP50, l.ServiceP99
			}
			fmt.Fprintf(o.Progress, "rpc: run %d %-6s %-26s %-7s %8.0f req/s  p50 %6.2fms  p99 %6.2fms  (%d requests)\n",
				run, phase, mr.Name, t, l.ReqPerSec, msf(p50), msf(p99), l.Requests)
		}
		return r, nil
	}
	for run := 1; run <= o.Runs; run++ {
		for i := range reports {
			mr := &reports[i]
			r, err := measure("closed", run, mr, i, func(url string) (*RPCLoad, error) {
				return closedLoop(ctx, url, mr.bodies, mr.Calls, o.Conns, o.Warmup, o.Duration)
			})
			if err != nil {
				return rep, err
			}
			mr.Closed = append(mr.Closed, r)
		}
	}
	for i := range reports {
		reports[i].summarizeClosed()
	}
	if o.OpenPercent > 0 {
		for run := 1; run <= o.Runs; run++ {
			for i := range reports {
				mr := &reports[i]
				rate := float64(o.OpenPercent) / 100 * min(mr.Median.KestrelReqPerSec, mr.Median.GethReqPerSec)
				if rate < 1 {
					continue
				}
				r, err := measure("open", run, mr, i, func(url string) (*RPCLoad, error) {
					return openLoop(ctx, url, mr.bodies, mr.Calls, rate, o.Warmup, o.Duration)
				})
				if err != nil {
					return rep, err
				}
				mr.Open = append(mr.Open, r)
			}
		}
		for i := range reports {
			reports[i].summarizeOpen()
		}
	}
	rep.Methods = reports

	if o.CPUProfile != "" {
		for i := range reports {
			mr := &reports[i]
			if !o.profiles(mr) {
				continue
			}
			p, err := profileMethod(ctx, urls[TargetKestrel], mr, o)
			if err != nil {
				return rep, fmt.Errorf("profile %s: %w", mr.Name, err)
			}
			rep.Profiles = append(rep.Profiles, *p)
			fmt.Fprintf(o.Progress, "rpc: CPU profile of Kestrel serving %s: %s\n", mr.Name, p.Path)
		}
	}

	// The WebSocket phase needs Kestrel alone.
	gethStopped = true
	if err := gnode.Stop(); err != nil {
		return rep, fmt.Errorf("stop geth: %w", err)
	}
	if o.WSMax > 0 {
		runtime.GC()
		ws, err := runWS(ctx, knode, w.Extra(), o)
		rep.WebSocket = ws
		if err != nil {
			return rep, fmt.Errorf("websocket: %w", err)
		}
	}
	return rep, nil
}

// profiles says whether --profile-methods selects the method.
func (o *RPCOptions) profiles(mr *RPCMethodReport) bool {
	switch o.ProfileMethods {
	case "all":
		return true
	case "", "missed":
		return mr.Median.TargetMet != nil && !*mr.Median.TargetMet
	}
	for _, k := range strings.Split(o.ProfileMethods, ",") {
		if strings.TrimSpace(k) == mr.Key {
			return true
		}
	}
	return false
}

// RPCProfilePath is where the CPU profile of a method goes: base with
// "-METHOD" inserted before the extension.
func RPCProfilePath(base, key string) string {
	ext := filepath.Ext(base)
	return strings.TrimSuffix(base, ext) + "-" + key + ext
}

func profileMethod(ctx context.Context, url string, mr *RPCMethodReport, o RPCOptions) (*RPCProfile, error) {
	path := RPCProfilePath(o.CPUProfile, mr.Key)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	runtime.GC()
	stop, err := startProfile(path)
	if err != nil {
		return nil, err
	}
	l, err := closedLoop(ctx, url, mr.bodies, mr.Calls, o.Conns, o.Warmup, o.Duration)
	stop()
	if err != nil {
		return nil, err
	}
	p := &RPCProfile{Method: mr.Name, Path: path, ReqPerSec: l.ReqPerSec}
	p.Top, p.ClientShare = serverProfileTop(path)
	return p, nil
}

// serverProfileTop is `go tool pprof -top` of the profile without the load
// generator's samples, and the generator's share ("" when the go command is
// not available).
func serverProfileTop(path string) (top, client string) {
	gobin := goTool()
	if gobin == "" {
		return "", ""
	}
	out, err := osexec.Command(gobin, "tool", "pprof", "-top", "-nodecount=25", "-tagignore=bench=client", path).CombinedOutput()
	if err != nil {
		return "", ""
	}
	top = string(out)
	if tags, err := osexec.Command(gobin, "tool", "pprof", "-tags", path).CombinedOutput(); err == nil {
		for _, line := range strings.Split(string(tags), "\n") {
			if l := strings.TrimSpace(line); strings.HasPrefix(l, "bench: Total ") {
				client = strings.TrimPrefix(l, "bench: Total ")
			}
		}
	}
	return top, client
}

func rpcNotes(g *GethNode) []string {
	return []string{
		"Both targets run in this process, as does the load generator, on the same cores; the target not being measured is idle (Kestrel's mini-block loop still ticks every 10 ms).",
		"kestrel: in-process sequencer (sequencer.New with the workload's genesis, default config, data directory on disk), JSON-RPC over fasthttp.",
		"geth: go-ethereum (" + gethVersion() + ") node.Node HTTP server (net/http, eth/net/web3) over eth.Ethereum, assembled as ethclient/simulated.NewBackend does, blocks sealed by catalyst.SimulatedBeacon; " +
			"genesis converted from Kestrel's with Kestrel's chain config (chain id, Prague at genesis), state in memory (path scheme), go-ethereum defaults otherwise (50M eth_call gas cap, 1000-call batches).",
		"The chains differ in block layout (Kestrel: 1 s blocks of 10 ms mini-blocks; geth: one block per Commit), hence block numbers, timestamps, base fees and the ETH balances of the senders of the setup transfers; accounts, nonces, token balances, the token's storage root and receipts' status and gas are checked equal.",
		fmt.Sprintf("geth head at block %d when measuring began.", g.Head()),
	}
}

// wsTxs is how many background transfers the WebSocket phase may need.
func (o *RPCOptions) wsTxs() int {
	if o.WSMax == 0 {
		return 0
	}
	steps := o.WSRefine
	for k := o.WSStart; k <= o.WSMax; k *= 2 {
		steps++
	}
	// Each step: connecting, settling, the window and the grace after it; each
	// failed step (at most 1 + WSRefine): the wait for steady state.
	secs := float64(steps)*(o.WSDuration.Seconds()+2*o.WSLag.Seconds()+4) + 10*float64(1+o.WSRefine) + 5
	return int(float64(o.WSTxRate) * secs)
}

// sendAll sends txs with eth_sendRawTransaction in batches of 500 and fails on
// any error.
func sendAll(url string, txs []RawTx) error {
	c, err := newRPCClient(url, 2)
	if err != nil {
		return err
	}
	defer c.close()
	for first := 0; first < len(txs); first += 500 {
		idx := make([]int, 0, 500)
		for k := first; k < min(first+500, len(txs)); k++ {
			idx = append(idx, k)
		}
		raw, err := c.post(sendBody(txs, idx), time.Minute)
		if err != nil {
			return err
		}
		var rs []rpcResponse
		if err := json.Unmarshal(raw, &rs); err != nil {
			return fmt.Errorf("decode send response: %w", err)
		}
		for _, r := range rs {
			if r.Error != nil {
				return fmt.Errorf("eth_sendRawTransaction: %s", r.Error.Message)
			}
		}
	}
	return nil
}

// callOnce is a one-off call on a fresh client.
func callOnce(url string, out any, method string, params ...any) error {
	c, err := newRPCClient(url, 1)
	if err != nil {
		return err
	}
	defer c.close()
	return c.call(out, method, params...)
}

// stateProbe is what one target answers about a sample.
type stateProbe struct {
	balances, tokens []string
	nonces           []string
	proofs           []string // account fields of eth_getProof
	tokenProof       string   // token's codeHash, storageHash and one slot
	receipts         []string // status and gasUsed
}

// verifySameState asks both targets about a sample of accounts (senders of the
// setup transfers and others), transfer recipients, the token's storage and
// every setup receipt, and fails unless they agree. go-ethereum indexes
// transactions in the background, so receipts are retried for a while.
func verifySameState(ctx context.Context, kURL, gURL string, w *Workload, setup []RawTx, seed uint64) (int, error) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	sent := w.SentBy(setup)
	var sample []common.Address
	var fees []bool // the account paid fees: its ETH balance depends on the chain's base fees
	for range min(64, len(w.Senders)) {
		i := r.IntN(len(w.Senders))
		sample, fees = append(sample, w.Senders[i].Addr), append(fees, sent[i] > 0)
	}
	for i := range min(8, len(setup)) { // surely senders
		sample, fees = append(sample, w.Senders[setup[i].Sender].Addr), append(fees, true)
	}
	// Recipients of the transfers hold tokens but no ether: they are absent
	// from the account trie, and the two answer eth_getProof for an absent
	// account differently (go-ethereum: zero code hash and storage root), so
	// their proofs are not compared.
	funded := len(sample)
	for j := range w.Received(setup) {
		if len(sample) >= 96 {
			break
		}
		sample, fees = append(sample, w.Recipients[j]), append(fees, false)
	}
	probe := func(url string) (*stateProbe, error) {
		c, err := newRPCClient(url, 1)
		if err != nil {
			return nil, err
		}
		defer c.close()
		var calls []rpcCall
		for _, a := range sample {
			calls = append(calls,
				rpcCall{"eth_getBalance", []any{a, "latest"}},
				rpcCall{"eth_call", []any{callArgs{To: w.Token, Data: contracts.ERC20BalanceOfData(a)}, "latest"}},
				rpcCall{"eth_getTransactionCount", []any{a, "latest"}},
				rpcCall{"eth_getProof", []any{a, []common.Hash{}, "latest"}})
		}
		calls = append(calls, rpcCall{"eth_getProof", []any{w.Token, []common.Hash{TokenBalanceSlot(sample[0]), TokenBalanceSlot(sample[len(sample)-1])}, "latest"}})
		rs, err := c.batch(calls)
		if err != nil {
			return nil, err
		}
		for i, x := range rs {
			if x.Error != nil {
				return nil, fmt.Errorf("%s: %s", calls[i].Method, x.Error.Message)
			}
		}
		p := &stateProbe{}
		for i := range sample {
			p.balances = append(p.balances, string(rs[4*i].Result))
			p.tokens = append(p.tokens, string(rs[4*i+1].Result))
			p.nonces = append(p.nonces, string(rs[4*i+2].Result))
			var acc struct {
				Balance, Nonce, CodeHash, StorageHash json.RawMessage
			}
			if err := json.Unmarshal(rs[4*i+3].Result, &acc); err != nil {
				return nil, fmt.Errorf("eth_getProof: %w", err)
			}
			bal := string(acc.Balance)
			if fees[i] {
				bal = "-"
			}
			p.proofs = append(p.proofs, fmt.Sprintf("%s %s %s %s", bal, acc.Nonce, acc.CodeHash, acc.StorageHash))
		}
		var tok struct {
			CodeHash, StorageHash json.RawMessage
			StorageProof          []struct{ Key, Value json.RawMessage }
		}
		if err := json.Unmarshal(rs[len(rs)-1].Result, &tok); err != nil {
			return nil, fmt.Errorf("eth_getProof token: %w", err)
		}
		p.tokenProof = fmt.Sprintf("%s %s", tok.CodeHash, tok.StorageHash)
		for _, s := range tok.StorageProof {
			p.tokenProof += " " + string(s.Value)
		}
		// Receipts, retried while go-ethereum indexes.
		deadline := time.Now().Add(time.Minute)
		for {
			calls = calls[:0]
			for _, t := range setup {
				calls = append(calls, rpcCall{"eth_getTransactionReceipt", []any{t.Hash}})
			}
			rs, err := c.batch(calls)
			if err != nil {
				return nil, err
			}
			p.receipts = p.receipts[:0]
			var missing error
			for i, x := range rs {
				var rc struct {
					Status  hexutil.Uint64 `json:"status"`
					GasUsed hexutil.Uint64 `json:"gasUsed"`
				}
				switch {
				case x.Error != nil:
					missing = fmt.Errorf("receipt of %s: %s", setup[i].Hash, x.Error.Message)
				case string(x.Result) == "null":
					missing = fmt.Errorf("no receipt for %s", setup[i].Hash)
				default:
					if err := json.Unmarshal(x.Result, &rc); err != nil {
						return nil, fmt.Errorf("receipt of %s: %w", setup[i].Hash, err)
					}
					if rc.Status != 1 {
						return nil, fmt.Errorf("transaction %s failed", setup[i].Hash)
					}
				}
				p.receipts = append(p.receipts, fmt.Sprintf("%d %d", rc.Status, rc.GasUsed))
			}
			if missing == nil {
				return p, nil
			}
			if time.Now().After(deadline) {
				return nil, missing
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	k, err := probe(kURL)
	if err != nil {
		return 0, fmt.Errorf("kestrel state: %w", err)
	}
	g, err := probe(gURL)
	if err != nil {
		return 0, fmt.Errorf("geth state: %w", err)
	}
	checks := 0
	diff := func(what string, i int, a, b string) error {
		checks++
		if a != b {
			return fmt.Errorf("kestrel and geth disagree on %s #%d: %s vs %s", what, i, a, b)
		}
		return nil
	}
	var errs []error
	for i, a := range sample {
		if !fees[i] {
			errs = append(errs, diff("eth_getBalance of "+a.Hex(), i, k.balances[i], g.balances[i]))
		}
		errs = append(errs, diff("balanceOf "+a.Hex(), i, k.tokens[i], g.tokens[i]),
			diff("nonce of "+a.Hex(), i, k.nonces[i], g.nonces[i]))
		if i < funded {
			errs = append(errs, diff("eth_getProof fields of "+a.Hex(), i, k.proofs[i], g.proofs[i]))
		}
	}
	errs = append(errs, diff("the token's code hash, storage root and slots", 0, k.tokenProof, g.tokenProof))
	for i := range setup {
		errs = append(errs, diff("receipt status and gas", i, k.receipts[i], g.receipts[i]))
	}
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("the targets do not serve the same state: %w", err)
	}
	return checks, nil
}

func medianOf[T any](xs []T, f func(T) float64) float64 {
	v := make([]float64, 0, len(xs))
	for _, x := range xs {
		v = append(v, f(x))
	}
	return Median(v)
}

func boolPtr(b bool) *bool { return &b }

func (mr *RPCMethodReport) summarizeClosed() {
	s := &mr.Median
	k := func(f func(l *RPCLoad) float64) float64 {
		return medianOf(mr.Closed, func(r RPCMethodRun) float64 { return f(r.Kestrel) })
	}
	g := func(f func(l *RPCLoad) float64) float64 {
		return medianOf(mr.Closed, func(r RPCMethodRun) float64 { return f(r.Geth) })
	}
	rps := func(l *RPCLoad) float64 { return l.ReqPerSec }
	cps := func(l *RPCLoad) float64 { return l.CallsPerSec }
	p50 := func(l *RPCLoad) float64 { return msf(l.P50) }
	p99 := func(l *RPCLoad) float64 { return msf(l.P99) }
	cpu := func(l *RPCLoad) float64 { return float64(l.CPUPerReq) / float64(time.Microsecond) }
	s.KestrelReqPerSec, s.GethReqPerSec = k(rps), g(rps)
	s.KestrelCallsPerSec, s.GethCallsPerSec = k(cps), g(cps)
	s.KestrelP50Ms, s.KestrelP99Ms, s.GethP50Ms, s.GethP99Ms = k(p50), k(p99), g(p50), g(p99)
	s.KestrelCPUPerReqUs, s.GethCPUPerReqUs = k(cpu), g(cpu)
	s.Ratio = ratio(s.KestrelReqPerSec, s.GethReqPerSec)
	if mr.Target > 0 {
		s.TargetMet = boolPtr(s.Ratio >= mr.Target)
	}
}

func (mr *RPCMethodReport) summarizeOpen() {
	if len(mr.Open) == 0 {
		return
	}
	s := &mr.Median
	s.OpenRate = mr.Open[0].Kestrel.Offered
	k := func(f func(l *RPCLoad) time.Duration) float64 {
		return medianOf(mr.Open, func(r RPCMethodRun) float64 { return msf(f(r.Kestrel)) })
	}
	g := func(f func(l *RPCLoad) time.Duration) float64 {
		return medianOf(mr.Open, func(r RPCMethodRun) float64 { return msf(f(r.Geth)) })
	}
	svc50 := func(l *RPCLoad) time.Duration { return l.ServiceP50 }
	svc99 := func(l *RPCLoad) time.Duration { return l.ServiceP99 }
	slot99 := func(l *RPCLoad) time.Duration { return l.P99 }
	s.OpenKestrelP50Ms, s.OpenKestrelP99Ms, s.OpenKestrelSlotP99Ms = k(svc50), k(svc99), k(slot99)
	s.OpenGethP50Ms, s.OpenGethP99Ms, s.OpenGethSlotP99Ms = g(svc50), g(svc99), g(slot99)
	s.OpenP99Ratio = ratio(s.OpenGethP99Ms, s.OpenKestrelP99Ms)
	s.LowerP99 = boolPtr(s.OpenKestrelP99Ms < s.OpenGethP99Ms)
}

// Lines are the report's last lines: one per method,
// "rpc METHOD: kestrel X req/s, geth Y req/s, ratio Z" (Z = X/Y of the
// unrounded medians, two decimals), with the target's verdict where there is
// one, then the WebSocket result.
func (r *RPCReport) Lines() []string {
	var out []string
	for _, m := range r.Methods {
		x := m.Median
		line := fmt.Sprintf("rpc %s: kestrel %.0f req/s, geth %.0f req/s, ratio %.2f", m.Name, x.KestrelReqPerSec, x.GethReqPerSec, x.Ratio)
		if x.TargetMet != nil {
			line += fmt.Sprintf(" (target %gx: %s)", m.Target, metWord(*x.TargetMet))
		}
		if x.LowerP99 != nil {
			line += fmt.Sprintf("; equal-load p99 kestrel %.2f ms, geth %.2f ms", x.OpenKestrelP99Ms, x.OpenGethP99Ms)
		}
		out = append(out, line)
	}
	if ws := r.WebSocket; ws != nil {
		out = append(out, ws.line())
	}
	return out
}

func metWord(b bool) string {
	if b {
		return "met"
	}
	return "MISSED"
}

func yesNo(b *bool) string {
	switch {
	case b == nil:
		return "-"
	case *b:
		return "yes"
	}
	return "no"
}

// WriteTable prints the human-readable report, ending with Lines.
func (r *RPCReport) WriteTable(out io.Writer) {
	m, s := r.Machine, r.Settings
	cpu := m.CPUModel
	if cpu == "" {
		cpu = "CPU model unknown"
	}
	fmt.Fprintf(out, "RPC benchmark: %d funded accounts holding the ERC-20 (%d holders after %d transfers, included on both); %d keep-alive connections, %s per method after %s warm-up, median of %d runs\n",
		r.Setup.Accounts, r.Setup.TokenHolders, r.Setup.Txs, s.Conns, s.Duration, s.Warmup, s.Runs)
	fmt.Fprintf(out, "machine: %d CPUs (%s), GOMAXPROCS %d, %s, GC %d%%, load average at start %s\n", m.NumCPU, cpu, m.GOMAXPROCS, m.GoVersion, m.GCPercent, loadShort(m.LoadAvg))
	for _, n := range r.Notes {
		fmt.Fprintln(out, "- "+n)
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "Closed loop (%d connections; a batch counts as one request):\n", s.Conns)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "method\tkestrel req/s\tgeth req/s\tratio\ttarget\tkestrel p50\tkestrel p99\tgeth p50\tgeth p99\tkestrel CPU/req\tgeth CPU/req\t")
	for _, mr := range r.Methods {
		x := mr.Median
		target := "-"
		if x.TargetMet != nil {
			target = fmt.Sprintf(">=%gx %s", mr.Target, metWord(*x.TargetMet))
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.2fx\t%s\t%.2fms\t%.2fms\t%.2fms\t%.2fms\t%.0fus\t%.0fus\t\n", mr.Name, x.KestrelReqPerSec, x.GethReqPerSec, x.Ratio, target,
			x.KestrelP50Ms, x.KestrelP99Ms, x.GethP50Ms, x.GethP99Ms, x.KestrelCPUPerReqUs, x.GethCPUPerReqUs)
	}
	tw.Flush()
	for _, mr := range r.Methods {
		if mr.Calls > 1 {
			fmt.Fprintf(out, "%s: kestrel %.0f calls/s, geth %.0f calls/s\n", mr.Name, mr.Median.KestrelCallsPerSec, mr.Median.GethCallsPerSec)
		}
	}
	fmt.Fprintln(out, "CPU/req: this process's CPU time per request (serving node + load generator + the idle other node); errors: 0 on every run (any error fails the benchmark)")
	if len(r.Methods) > 0 && r.Methods[0].Median.OpenRate > 0 {
		fmt.Fprintln(out)
		fmt.Fprintf(out, "Equal load (open loop at %d%% of the lower closed-loop throughput; p50/p99 from send to answer, \"from slot\" from the scheduled send time):\n", s.OpenPercent)
		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "method\toffered req/s\tkestrel p50\tkestrel p99\tgeth p50\tgeth p99\tp99 geth/kestrel\tkestrel lower p99\tkestrel p99 from slot\tgeth p99 from slot\t")
		for _, mr := range r.Methods {
			x := mr.Median
			if x.OpenRate == 0 {
				continue
			}
			fmt.Fprintf(tw, "%s\t%.0f\t%.2fms\t%.2fms\t%.2fms\t%.2fms\t%.2fx\t%s\t%.2fms\t%.2fms\t\n", mr.Name, x.OpenRate, x.OpenKestrelP50Ms, x.OpenKestrelP99Ms,
				x.OpenGethP50Ms, x.OpenGethP99Ms, x.OpenP99Ratio, yesNo(x.LowerP99), x.OpenKestrelSlotP99Ms, x.OpenGethSlotP99Ms)
		}
		tw.Flush()
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "All closed-loop runs (req/s, p99; measured first):")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "method\trun\tfirst\tkestrel req/s\tkestrel p99\tgeth req/s\tgeth p99\t")
	for _, mr := range r.Methods {
		for _, run := range mr.Closed {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%.0f\t%s\t%.0f\t%s\t\n", mr.Name, run.Run, run.First, run.Kestrel.ReqPerSec, ms(run.Kestrel.P99), run.Geth.ReqPerSec, ms(run.Geth.P99))
		}
	}
	tw.Flush()
	if ws := r.WebSocket; ws != nil {
		fmt.Fprintln(out)
		ws.writeTable(out)
	}
	for _, p := range r.Profiles {
		fmt.Fprintf(out, "\nCPU profile of Kestrel serving %s (%.0f req/s while profiled): %s\n", p.Method, p.ReqPerSec, p.Path)
		if p.ClientShare != "" {
			fmt.Fprintf(out, "load generator (pprof label bench=client): %s; top entries without it:\n", p.ClientShare)
		}
		if p.Top != "" {
			fmt.Fprint(out, p.Top)
		}
	}
	fmt.Fprintln(out)
	for _, l := range r.Lines() {
		fmt.Fprintln(out, l)
	}
}

// WriteJSON writes the report as indented JSON.
func (r *RPCReport) WriteJSON(path string) error { return writeJSON(path, r) }

// gethVersion is the go-ethereum module version this binary was built with
// (the replacement's, op-geth, when replaced).
var gethVersion = sync.OnceValue(func() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(version unknown)"
	}
	for _, d := range info.Deps {
		if d.Path == "github.com/ethereum/go-ethereum" {
			if d.Replace != nil {
				return d.Replace.Path + " " + d.Replace.Version
			}
			return d.Version
		}
	}
	return "(version unknown)"
})
