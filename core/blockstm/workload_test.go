package blockstm

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
)

type opKind uint8

const (
	opRead     opKind = iota // read key
	opWrite                  // write key (value derived from everything read so far)
	opReadDyn                // read key chosen from the accumulator
	opWriteDyn               // write key chosen from the accumulator
)

type op struct {
	kind opKind
	key  int
}

type txSpec struct {
	ops   []op
	sleep time.Duration
	spin  int
}

type workload struct {
	name string
	keys int
	txs  []txSpec
}

func testKey(i int) Key {
	var k Key
	k.Kind = uint8(i % 3)
	binary.BigEndian.PutUint64(k.Addr[12:], uint64(i))
	binary.BigEndian.PutUint64(k.Slot[24:], uint64(i)*7)
	return k
}

type readWriter interface {
	Read(Key) (any, bool, error)
	Write(Key, any)
}

var spinSink atomic.Uint64

func spin(n int) {
	x := uint64(n)
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	spinSink.Add(x)
}

// runTx is the deterministic body of a synthetic transaction; values written
// depend on every value read, so any ordering mistake changes the state.
func runTx(i int, spec *txSpec, keys int, rw readWriter) (uint64, error) {
	acc := uint64(i+1) * 0x9E3779B97F4A7C15
	for _, o := range spec.ops {
		k := o.key
		if o.kind == opReadDyn || o.kind == opWriteDyn {
			k = int((acc>>7)+uint64(o.key)) % keys
		}
		switch o.kind {
		case opRead, opReadDyn:
			v, found, err := rw.Read(testKey(k))
			if err != nil {
				return 0, err
			}
			x := uint64(k) * 1000003 // pre-block storage value
			if found {
				x = v.(uint64)
			}
			acc = (acc ^ x) * 1099511628211
		case opWrite, opWriteDyn:
			rw.Write(testKey(k), acc^uint64(k))
			acc = acc*31 + 7
		}
	}
	if spec.spin > 0 {
		spin(spec.spin)
	}
	if spec.sleep > 0 {
		time.Sleep(spec.sleep)
	}
	return acc, nil
}

// seqView is a plain-map view used to compute the sequential reference.
type seqView struct {
	state  map[Key]any
	writes []WriteEntry
	idx    map[Key]int
}

func (v *seqView) Read(k Key) (any, bool, error) {
	x, ok := v.state[k]
	return x, ok, nil
}

func (v *seqView) Write(k Key, x any) {
	v.state[k] = x
	if i, ok := v.idx[k]; ok {
		v.writes[i].Value = x
		return
	}
	v.idx[k] = len(v.writes)
	v.writes = append(v.writes, WriteEntry{Key: k, Value: x})
}

type seqResult struct {
	state   map[Key]any
	outputs []uint64
	writes  [][]WriteEntry
}

func runSequential(w *workload) seqResult {
	r := seqResult{state: map[Key]any{}}
	for i := range w.txs {
		v := &seqView{state: r.state, idx: map[Key]int{}}
		out, err := runTx(i, &w.txs[i], w.keys, v)
		if err != nil {
			panic(err)
		}
		r.outputs = append(r.outputs, out)
		r.writes = append(r.writes, v.writes)
	}
	return r
}

// checkingExec runs a workload and checks scheduler invariants while it runs.
type checkingExec struct {
	w          *workload
	inFlight   []atomic.Int32
	lastInc    []atomic.Int64
	violations atomic.Int64
	firstErr   atomic.Value
}

func newCheckingExec(w *workload) *checkingExec {
	return &checkingExec{w: w, inFlight: make([]atomic.Int32, len(w.txs)), lastInc: make([]atomic.Int64, len(w.txs))}
}

func (e *checkingExec) violate(format string, args ...any) {
	e.violations.Add(1)
	e.firstErr.CompareAndSwap(nil, fmt.Sprintf(format, args...))
}

func (e *checkingExec) Execute(i, inc int, view *TxView) (ExecResult, error) {
	if e.inFlight[i].Add(1) != 1 {
		e.violate("tx %d executed concurrently twice", i)
	}
	defer e.inFlight[i].Add(-1)
	if prev := e.lastInc[i].Swap(int64(inc)); int64(inc) < prev {
		e.violate("tx %d incarnation went back %d -> %d", i, prev, inc)
	}
	if st, cur := view.sched.Status(i); st != Executing || cur != inc {
		e.violate("tx %d executing incarnation %d but status %v/%d", i, inc, st, cur)
	}
	out, err := runTx(i, &e.w.txs[i], e.w.keys, view)
	if err != nil {
		return ExecResult{}, err
	}
	return ExecResult{Output: out}, nil
}

func checkRun(t testing.TB, w *workload, workers int, want seqResult) *Result {
	t.Helper()
	ex := newCheckingExec(w)
	res, err := Run(context.Background(), len(w.txs), ex, workers)
	if err != nil {
		t.Fatalf("%s/workers=%d: Run: %v", w.name, workers, err)
	}
	if n := ex.violations.Load(); n > 0 {
		t.Fatalf("%s/workers=%d: %d invariant violations, first: %v", w.name, workers, n, ex.firstErr.Load())
	}
	if len(res.Txs) != len(w.txs) {
		t.Fatalf("%s/workers=%d: %d results for %d txs", w.name, workers, len(res.Txs), len(w.txs))
	}
	for i := range res.Txs {
		tr := &res.Txs[i]
		if out, ok := tr.Output.(uint64); !ok || out != want.outputs[i] {
			t.Fatalf("%s/workers=%d: tx %d output %v, want %v", w.name, workers, i, tr.Output, want.outputs[i])
		}
		if len(tr.Writes) != len(want.writes[i]) || (len(tr.Writes) > 0 && !reflect.DeepEqual(tr.Writes, want.writes[i])) {
			t.Fatalf("%s/workers=%d: tx %d writes %v, want %v", w.name, workers, i, tr.Writes, want.writes[i])
		}
		if st, inc := ex.lastInc[i].Load(), tr.Incarnation; int(st) != inc {
			t.Fatalf("%s/workers=%d: tx %d committed incarnation %d but last executed %d", w.name, workers, i, inc, st)
		}
		for _, r := range tr.Reads {
			if r.Found && r.Version.TxIndex >= i {
				t.Fatalf("tx %d read from tx %d", i, r.Version.TxIndex)
			}
		}
	}
	if got := res.FinalState(); !reflect.DeepEqual(got, want.state) {
		t.Fatalf("%s/workers=%d: final state differs from sequential (%d vs %d keys)", w.name, workers, len(got), len(want.state))
	}
	if snap := res.MV.Snapshot(); !reflect.DeepEqual(snap, want.state) {
		t.Fatalf("%s/workers=%d: MVMemory snapshot differs from sequential", w.name, workers)
	}
	s := res.Stats
	if s.Executions < len(w.txs) || s.Validations < len(w.txs) {
		t.Fatalf("%s/workers=%d: stats too low: %+v", w.name, workers, s)
	}
	if workers == 1 && (s.Executions != len(w.txs) || s.ReExecutions != 0 || s.Aborts != 0 || s.DependencyHits != 0) {
		t.Fatalf("%s/workers=1: expected sequential-equivalent stats, got %+v", w.name, s)
	}
	return res
}

// ---- workload generators ----

func randomWorkload(rng *rand.Rand, n, keys, maxOps int, dyn bool) []txSpec {
	txs := make([]txSpec, n)
	for i := range txs {
		nops := 1 + rng.Intn(maxOps)
		for j := 0; j < nops; j++ {
			k := opKind(rng.Intn(2))
			if dyn && rng.Intn(4) == 0 {
				k += 2
			}
			txs[i].ops = append(txs[i].ops, op{k, rng.Intn(keys)})
		}
	}
	return txs
}

func independentWorkload(n int) workload {
	w := workload{name: "independent", keys: n}
	for i := 0; i < n; i++ {
		w.txs = append(w.txs, txSpec{ops: []op{{opRead, i}, {opWrite, i}}})
	}
	return w
}

func allConflictWorkload(n int) workload {
	w := workload{name: "all-conflict", keys: 1}
	for i := 0; i < n; i++ {
		w.txs = append(w.txs, txSpec{ops: []op{{opRead, 0}, {opWrite, 0}}})
	}
	return w
}

func chainWorkload(n int) workload {
	w := workload{name: "chain", keys: n}
	for i := 0; i < n; i++ {
		ops := []op{{opWrite, i}}
		if i > 0 {
			ops = []op{{opRead, i - 1}, {opWrite, i}}
		}
		w.txs = append(w.txs, txSpec{ops: ops})
	}
	return w
}

func longTailWorkload(rng *rand.Rand, n int) workload {
	const hot, keys = 3, 10000
	w := workload{name: "long-tail", keys: keys}
	for i := 0; i < n; i++ {
		var ops []op
		for j := 0; j < 4; j++ {
			k := hot + rng.Intn(keys-hot)
			if rng.Intn(10) < 2 {
				k = rng.Intn(hot)
			}
			ops = append(ops, op{opKind(rng.Intn(2)), k})
		}
		w.txs = append(w.txs, txSpec{ops: ops})
	}
	return w
}

func withTiming(rng *rand.Rand, w workload) workload {
	w.name += "+timing"
	txs := make([]txSpec, len(w.txs))
	copy(txs, w.txs)
	for i := range txs {
		switch rng.Intn(4) {
		case 0:
			txs[i].sleep = time.Duration(rng.Intn(200)) * time.Microsecond
		case 1:
			txs[i].spin = rng.Intn(20000)
		}
	}
	w.txs = txs
	return w
}

func testWorkloads(seed int64) []workload {
	rng := rand.New(rand.NewSource(seed))
	ws := []workload{
		{name: "random-small", keys: 20, txs: randomWorkload(rng, 300, 20, 6, false)},
		{name: "random-large", keys: 100000, txs: randomWorkload(rng, 300, 100000, 6, false)},
		{name: "random-dynamic", keys: 16, txs: randomWorkload(rng, 300, 16, 8, true)},
		independentWorkload(300),
		allConflictWorkload(200),
		chainWorkload(200),
		longTailWorkload(rng, 300),
		{name: "blind-writes", keys: 4, txs: func() []txSpec {
			txs := make([]txSpec, 200)
			for i := range txs {
				txs[i].ops = []op{{opWrite, rng.Intn(4)}, {opWrite, rng.Intn(4)}}
			}
			return txs
		}()},
	}
	ws = append(ws,
		withTiming(rng, workload{name: "random-small", keys: 20, txs: randomWorkload(rng, 150, 20, 6, true)}),
		withTiming(rng, allConflictWorkload(100)),
		withTiming(rng, chainWorkload(100)),
	)
	return ws
}

func TestWorkloads(t *testing.T) {
	seeds := []int64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		for _, w := range testWorkloads(seed) {
			want := runSequential(&w)
			for _, workers := range []int{1, 2, 4, 8} {
				t.Run(fmt.Sprintf("seed%d/%s/workers=%d", seed, w.name, workers), func(t *testing.T) {
					checkRun(t, &w, workers, want)
				})
			}
		}
	}
}

// TestWorkloadsRepeated hammers the conflict-heavy workloads to shake out races.
func TestWorkloadsRepeated(t *testing.T) {
	iters := 30
	if testing.Short() {
		iters = 5
	}
	rng := rand.New(rand.NewSource(42))
	for it := 0; it < iters; it++ {
		ws := []workload{
			allConflictWorkload(64),
			chainWorkload(64),
			{name: "random-dynamic", keys: 6, txs: randomWorkload(rng, 64, 6, 6, true)},
		}
		for _, w := range ws {
			want := runSequential(&w)
			checkRun(t, &w, 2+it%7, want)
		}
	}
}
