package blockstm

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
)

// ErrDependency is returned (wrapped or not) by TxView.Read, and should be
// propagated by Executor.Execute, when the read hit an ESTIMATE written by
// an aborted incarnation of transaction BlockedBy.
type ErrDependency struct {
	BlockedBy int
}

func (e ErrDependency) Error() string {
	return fmt.Sprintf("blockstm: read dependency on tx %d", e.BlockedBy)
}

// ExecResult is what an Executor returns for one incarnation. The read and
// write sets are collected by the TxView; Output is an opaque per-transaction
// result (e.g. a receipt) kept for the final incarnation.
type ExecResult struct {
	Output any
}

// Executor runs transactions. Execute runs incarnation inc of tx txIndex,
// reading and writing state only through view. It must be deterministic in
// what it reads through the view and safe to call concurrently for different
// transactions. It returns ErrDependency when a read reported one; any other
// error aborts the whole Run. Transaction-level failures (reverts) belong in
// ExecResult.Output, not in the error.
type Executor interface {
	Execute(txIndex, incarnation int, view *TxView) (ExecResult, error)
}

// ExecutorFunc adapts a function to Executor.
type ExecutorFunc func(txIndex, incarnation int, view *TxView) (ExecResult, error)

func (f ExecutorFunc) Execute(txIndex, incarnation int, view *TxView) (ExecResult, error) {
	return f(txIndex, incarnation, view)
}

// TxView is the state view of one transaction incarnation: reads go to the
// incarnation's own buffered writes, then to MVMemory (recording the read
// set); writes are buffered until the incarnation finishes. A TxView is used
// by one goroutine only and must not be retained after Execute returns.
type TxView struct {
	mv        *MVMemory
	sched     *Scheduler // for invariant checks in tests
	version   Version
	reads     []ReadDescriptor
	readIdx   map[Key]int // index into reads, built once there are many
	writes    []WriteEntry
	writeIdx  map[Key]int // index into writes, built once there are many
	blockedBy int
}

func newTxView(mv *MVMemory, s *Scheduler, v Version) *TxView {
	// The read and write sets outlive the view (they are recorded), so they
	// are allocated per view, with room for a typical transaction.
	return &TxView{mv: mv, sched: s, version: v, blockedBy: -1, reads: make([]ReadDescriptor, 0, 8), writes: make([]WriteEntry, 0, 8)}
}

// TxIndex returns the transaction index of the view.
func (v *TxView) TxIndex() int { return v.version.TxIndex }

// Incarnation returns the incarnation of the view.
func (v *TxView) Incarnation() int { return v.version.Incarnation }

// Read returns the value of key as seen by this transaction. found=false
// means no lower transaction wrote it: the caller reads pre-block storage.
// A non-nil error is an ErrDependency; Execute should return it.
func (v *TxView) Read(key Key) (value any, found bool, err error) {
	value, _, found, err = v.ReadVersion(key)
	return value, found, err
}

// ReadVersion is Read that also returns the version of the write read (the
// view's own version for its own writes; zero for a value resolved from
// deltas).
func (v *TxView) ReadVersion(key Key) (value any, version Version, found bool, err error) {
	if v.blockedBy >= 0 {
		return nil, Version{}, false, ErrDependency{BlockedBy: v.blockedBy}
	}
	if i := v.findWrite(&key); i >= 0 {
		return v.writes[i].Value, v.version, true, nil
	}
	if i := v.findRead(&key); i >= 0 {
		r := &v.reads[i]
		return r.Value, r.Version, r.Found || r.Resolved, nil
	}
	val, ver, st := v.mv.Read(key, v.version.TxIndex)
	if st == ReadDelta {
		val, ver, st = v.mv.Resolve(key, v.version.TxIndex)
		if st == ReadOK {
			v.addRead(ReadDescriptor{Key: key, Resolved: true, Value: val})
			return val, Version{}, true, nil
		}
	}
	switch st {
	case ReadEstimate:
		v.blockedBy = ver.TxIndex
		return nil, Version{}, false, ErrDependency{BlockedBy: ver.TxIndex}
	case ReadOK:
		v.addRead(ReadDescriptor{Key: key, Found: true, Version: ver, Value: val})
		return val, ver, true, nil
	}
	v.addRead(ReadDescriptor{Key: key})
	return nil, Version{}, false, nil
}

// indexThreshold is the set size above which a view indexes its reads and
// writes with a map; below it a linear scan is faster.
const indexThreshold = 16

func (v *TxView) findRead(k *Key) int {
	if v.readIdx != nil {
		if i, ok := v.readIdx[*k]; ok {
			return i
		}
		return -1
	}
	for i := range v.reads {
		if v.reads[i].Key == *k {
			return i
		}
	}
	return -1
}

func (v *TxView) addRead(r ReadDescriptor) {
	v.reads = append(v.reads, r)
	switch n := len(v.reads); {
	case v.readIdx != nil:
		v.readIdx[r.Key] = n - 1
	case n > indexThreshold:
		v.readIdx = make(map[Key]int, 2*n)
		for i := range v.reads {
			v.readIdx[v.reads[i].Key] = i
		}
	}
}

func (v *TxView) findWrite(k *Key) int {
	if v.writeIdx != nil {
		if i, ok := v.writeIdx[*k]; ok {
			return i
		}
		return -1
	}
	for i := range v.writes {
		if v.writes[i].Key == *k {
			return i
		}
	}
	return -1
}

// WaitFor returns an ErrDependency when a lower transaction's ESTIMATE sits
// on key (an aborted or predicted write), without recording a read: an
// executor can check predicted reads before doing any work.
func (v *TxView) WaitFor(key Key) error {
	if b, ok := v.mv.EstimateBelow(key, v.version.TxIndex); ok {
		return ErrDependency{BlockedBy: b}
	}
	return nil
}

// Write buffers a write of key; a later write of the same key overwrites it.
func (v *TxView) Write(key Key, value any) { v.write(key, value, false) }

// WriteDelta buffers a commutative delta to key (see WriteEntry). A view
// must not read a key it has written a delta to: the executor keeps its own
// pending deltas and folds them on a read.
func (v *TxView) WriteDelta(key Key, delta any) { v.write(key, delta, true) }

func (v *TxView) write(key Key, value any, delta bool) {
	if i := v.findWrite(&key); i >= 0 {
		v.writes[i].Value, v.writes[i].Delta = value, delta
		return
	}
	v.writes = append(v.writes, WriteEntry{Key: key, Value: value, Delta: delta})
	switch n := len(v.writes); {
	case v.writeIdx != nil:
		v.writeIdx[key] = n - 1
	case n > indexThreshold:
		v.writeIdx = make(map[Key]int, 2*n)
		for i := range v.writes {
			v.writeIdx[v.writes[i].Key] = i
		}
	}
}

// ReadSet returns the reads recorded so far (not including own-write hits).
func (v *TxView) ReadSet() []ReadDescriptor { return v.reads }

// WriteSet returns the buffered writes in first-write order.
func (v *TxView) WriteSet() []WriteEntry { return v.writes }

// TxResult is the committed result of one transaction.
type TxResult struct {
	Incarnation int // final incarnation
	Output      any
	Reads       []ReadDescriptor
	Writes      []WriteEntry
}

// Stats counts the work done by a Run.
type Stats struct {
	Executions      int // Execute calls, including ones that hit a dependency
	ReExecutions    int // Execute calls with incarnation > 0
	DependencyHits  int // executions that stopped on an ESTIMATE
	Suspensions     int // of those, executions suspended until the blocker finished
	Validations     int // validation tasks
	ValidationFails int // validations that found a stale read set
	Aborts          int // validations that aborted an incarnation
}

func (s *Stats) add(o *Stats) {
	s.Executions += o.Executions
	s.ReExecutions += o.ReExecutions
	s.DependencyHits += o.DependencyHits
	s.Suspensions += o.Suspensions
	s.Validations += o.Validations
	s.ValidationFails += o.ValidationFails
	s.Aborts += o.Aborts
}

// Result is the outcome of a successful Run, committed in transaction order.
type Result struct {
	Txs   []TxResult
	Stats Stats
	MV    *MVMemory
}

// FinalState applies every transaction's write set in order and returns the
// resulting key -> value map (only keys written by the block).
func (r *Result) FinalState() map[Key]any {
	out := make(map[Key]any)
	for i := range r.Txs {
		for _, w := range r.Txs[i].Writes {
			out[w.Key] = w.Value
		}
	}
	return out
}

type txOutput struct {
	output any
	reads  []ReadDescriptor
	writes []WriteEntry
}

type runner struct {
	ctx   context.Context
	exec  Executor
	mv    *MVMemory
	sched *Scheduler
	// outputs[i] is written only by the worker that owns tx i's Executing
	// status, and read after all workers have exited.
	outputs []txOutput

	halt    chan struct{}
	errOnce sync.Once
	err     error
}

func (r *runner) fail(err error) {
	r.errOnce.Do(func() {
		r.err = err
		close(r.halt)
	})
}

func (r *runner) halted() bool {
	select {
	case <-r.halt:
		return true
	default:
		return false
	}
}

// Options configure a Run.
type Options struct {
	// Workers is the number of worker goroutines (<=0: GOMAXPROCS).
	Workers int
	// Ops resolve delta writes; required when the executor writes deltas.
	Ops Ops
	// Predicted, when set, holds for each transaction the keys it is
	// predicted to write: they start as ESTIMATEs (see MVMemory.Predict).
	Predicted [][]Key
}

// Run executes transactions 0..n-1 with Block-STM using the given number of
// workers (<=0 means GOMAXPROCS) and returns results identical to executing
// them sequentially in index order. It returns ctx's error if ctx is
// cancelled, or the first non-dependency error returned by exec.
func Run(ctx context.Context, n int, exec Executor, workers int) (*Result, error) {
	return RunWithOptions(ctx, n, exec, Options{Workers: workers})
}

// RunWithOptions is Run with delta operations and predicted write sets.
func RunWithOptions(ctx context.Context, n int, exec Executor, opts Options) (*Result, error) {
	if n < 0 {
		return nil, fmt.Errorf("blockstm: negative transaction count %d", n)
	}
	if opts.Predicted != nil && len(opts.Predicted) != n {
		return nil, fmt.Errorf("blockstm: %d predicted write sets for %d transactions", len(opts.Predicted), n)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, n))
	r := &runner{
		ctx:     ctx,
		exec:    exec,
		mv:      NewMVMemoryWithOps(n, opts.Ops),
		sched:   NewScheduler(n),
		outputs: make([]txOutput, n),
		halt:    make(chan struct{}),
	}
	for i, keys := range opts.Predicted {
		r.mv.Predict(i, keys)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if n == 0 {
		return &Result{MV: r.mv}, nil
	}
	stats := make([]Stats, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(st *Stats) {
			defer wg.Done()
			r.worker(st)
		}(&stats[w])
	}
	stop := context.AfterFunc(ctx, func() { r.fail(ctx.Err()) })
	wg.Wait()
	stop()
	if r.err != nil {
		return nil, r.err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := &Result{Txs: make([]TxResult, n), MV: r.mv}
	for i := range stats {
		res.Stats.add(&stats[i])
	}
	for i := range res.Txs {
		st, inc := r.sched.Status(i)
		if st != Executed {
			return nil, fmt.Errorf("blockstm: internal error: tx %d finished in status %v", i, st)
		}
		o := &r.outputs[i]
		res.Txs[i] = TxResult{Incarnation: inc, Output: o.output, Reads: o.reads, Writes: o.writes}
	}
	return res, nil
}

func (r *runner) worker(st *Stats) {
	defer func() {
		if p := recover(); p != nil {
			r.fail(fmt.Errorf("blockstm: panic: %v\n%s", p, debug.Stack()))
		}
	}()
	var task Task
	idle := 0
	for !r.sched.Done() {
		if r.halted() {
			return
		}
		switch task.Kind {
		case ExecutionTask:
			task = r.tryExecute(task.Version, st)
		case ValidationTask:
			task = r.validate(task.Version, st)
		}
		if task.Kind == NoTask {
			task = r.sched.NextTask()
			if task.Kind == NoTask {
				// Nothing to do until another worker finishes a task.
				idle++
				if idle > 64 {
					runtime.Gosched()
				}
				continue
			}
		}
		idle = 0
	}
}

func (r *runner) tryExecute(v Version, st *Stats) Task {
	for {
		if r.halted() {
			return Task{}
		}
		view := newTxView(r.mv, r.sched, v)
		st.Executions++
		if v.Incarnation > 0 {
			st.ReExecutions++
		}
		res, err := r.exec.Execute(v.TxIndex, v.Incarnation, view)
		blocking := view.blockedBy
		if err != nil {
			var dep ErrDependency
			if errors.As(err, &dep) {
				blocking = dep.BlockedBy
			} else if blocking < 0 {
				r.fail(fmt.Errorf("blockstm: tx %d (incarnation %d): %w", v.TxIndex, v.Incarnation, err))
				return Task{}
			}
			// A non-dependency error after an ESTIMATE read is speculative:
			// treat it as the dependency.
		}
		if blocking >= 0 {
			if blocking >= v.TxIndex {
				r.fail(fmt.Errorf("blockstm: tx %d reported dependency on tx %d", v.TxIndex, blocking))
				return Task{}
			}
			st.DependencyHits++
			if r.sched.AddDependency(v.TxIndex, blocking) {
				st.Suspensions++
				return Task{}
			}
			continue // blocker already executed: retry the same incarnation
		}
		r.outputs[v.TxIndex] = txOutput{output: res.Output, reads: view.reads, writes: view.writes}
		wrote := r.mv.Record(v, view.reads, view.writes)
		return r.sched.FinishExecution(v, wrote)
	}
}

func (r *runner) validate(v Version, st *Stats) Task {
	st.Validations++
	valid := r.mv.ValidateReadSet(v.TxIndex)
	if valid {
		return r.sched.FinishValidation(v.TxIndex, false)
	}
	st.ValidationFails++
	aborted := r.sched.TryValidationAbort(v)
	if aborted {
		st.Aborts++
		r.mv.ConvertWritesToEstimates(v.TxIndex)
	}
	return r.sched.FinishValidation(v.TxIndex, aborted)
}
