package blockstm

import (
	"context"
	"errors"
	"math/rand"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestMVMemoryReadRecord(t *testing.T) {
	mv := NewMVMemory(4)
	a, b, c := testKey(1), testKey(2), testKey(3)
	if _, _, st := mv.Read(a, 3); st != ReadNotFound {
		t.Fatalf("empty read: %v", st)
	}
	if !mv.Record(Version{0, 0}, nil, []WriteEntry{{Key: a, Value: 10}, {Key: b, Value: 20}}) {
		t.Fatal("first record must write new locations")
	}
	mv.Record(Version{2, 0}, []ReadDescriptor{{Key: a, Found: true, Version: Version{0, 0}}}, []WriteEntry{{Key: a, Value: 12}})
	if v, ver, st := mv.Read(a, 2); st != ReadOK || v != 10 || ver != (Version{0, 0}) {
		t.Fatalf("read(a,2) = %v %v %v", v, ver, st)
	}
	if v, ver, st := mv.Read(a, 3); st != ReadOK || v != 12 || ver != (Version{2, 0}) {
		t.Fatalf("read(a,3) = %v %v %v", v, ver, st)
	}
	if _, _, st := mv.Read(a, 0); st != ReadNotFound {
		t.Fatalf("read(a,0) = %v", st)
	}
	if !mv.ValidateReadSet(2) {
		t.Fatal("tx 2 read set should be valid")
	}
	// tx 1 writes a: tx 2's read of a is stale.
	mv.Record(Version{1, 0}, nil, []WriteEntry{{Key: a, Value: 11}})
	if mv.ValidateReadSet(2) {
		t.Fatal("tx 2 read set should be invalid after tx 1 wrote a")
	}
	// Estimates.
	mv.ConvertWritesToEstimates(0)
	if _, ver, st := mv.Read(b, 1); st != ReadEstimate || ver.TxIndex != 0 {
		t.Fatalf("read(b,1) = %v %v", ver, st)
	}
	// Re-record tx 0 incarnation 1 without b and with c: b removed, c new.
	if !mv.Record(Version{0, 1}, nil, []WriteEntry{{Key: a, Value: 100}, {Key: c, Value: 30}}) {
		t.Fatal("writing c is a new location")
	}
	if _, _, st := mv.Read(b, 4); st != ReadNotFound {
		t.Fatalf("b must be removed, got %v", st)
	}
	if mv.Record(Version{0, 2}, nil, []WriteEntry{{Key: c, Value: 31}}) {
		t.Fatal("subset of previous writes is not a new location")
	}
	if got := mv.LastWrittenKeys(0); len(got) != 1 || got[0] != c {
		t.Fatalf("last written keys %v", got)
	}
	snap := mv.Snapshot()
	if len(snap) != 2 || snap[a] != 12 || snap[c] != 31 {
		t.Fatalf("snapshot %v", snap)
	}
	fw := mv.FinalWrites(a)
	if len(fw) != 2 || fw[0].Version != (Version{1, 0}) || fw[1].Version != (Version{2, 0}) {
		t.Fatalf("final writes %v", fw)
	}
}

func TestSchedulerSequentialWalk(t *testing.T) {
	const n = 5
	s := NewScheduler(n)
	for i := 0; i < n; i++ {
		task := s.NextTask()
		if task.Kind != ExecutionTask || task.Version != (Version{i, 0}) {
			t.Fatalf("step %d: got %+v", i, task)
		}
		task = s.FinishExecution(task.Version, true)
		if task.Kind != NoTask {
			// validation_idx has not passed i yet, so no validation is returned
			t.Fatalf("unexpected task %+v", task)
		}
		task = s.NextTask()
		if task.Kind != ValidationTask || task.Version.TxIndex != i {
			t.Fatalf("step %d: want validation, got %+v", i, task)
		}
		if task = s.FinishValidation(i, false); task.Kind != NoTask {
			t.Fatalf("unexpected %+v", task)
		}
	}
	if task := s.NextTask(); task.Kind != NoTask || !s.Done() {
		t.Fatalf("expected done, got %+v done=%v", task, s.Done())
	}
}

func TestSchedulerDependencyAndAbort(t *testing.T) {
	s := NewScheduler(3)
	t0 := s.NextTask()
	t1 := s.NextTask() // validation of tx0 not possible yet: no task
	if t1.Kind != NoTask {
		t.Fatalf("%+v", t1)
	}
	t1 = s.NextTask()
	if t0.Version.TxIndex != 0 || t1.Version.TxIndex != 1 {
		t.Fatalf("%+v %+v", t0, t1)
	}
	// tx1 depends on tx0 (still executing): suspended.
	if !s.AddDependency(1, 0) {
		t.Fatal("dependency should be added")
	}
	if st, _ := s.Status(1); st != Aborting {
		t.Fatalf("status %v", st)
	}
	// tx0 finishes: tx1 resumes with incarnation 1.
	s.FinishExecution(t0.Version, true)
	if st, inc := s.Status(1); st != ReadyToExecute || inc != 1 {
		t.Fatalf("status %v inc %d", st, inc)
	}
	if s.AddDependency(2, 0) {
		t.Fatal("tx0 already executed: no dependency")
	}
	// Validation of tx0 aborts it.
	v := s.NextTask()
	if v.Kind != ValidationTask || v.Version.TxIndex != 0 {
		t.Fatalf("%+v", v)
	}
	if !s.TryValidationAbort(v.Version) || s.TryValidationAbort(v.Version) {
		t.Fatal("exactly one abort must succeed")
	}
	re := s.FinishValidation(0, true)
	if re.Kind != ExecutionTask || re.Version != (Version{0, 1}) {
		t.Fatalf("re-execution task %+v", re)
	}
}

func TestRunEmptyAndSingle(t *testing.T) {
	res, err := Run(context.Background(), 0, ExecutorFunc(func(int, int, *TxView) (ExecResult, error) {
		t.Fatal("must not execute")
		return ExecResult{}, nil
	}), 4)
	if err != nil || len(res.Txs) != 0 {
		t.Fatalf("%v %v", res, err)
	}
	res, err = Run(context.Background(), 1, ExecutorFunc(func(i, inc int, v *TxView) (ExecResult, error) {
		v.Write(testKey(1), "x")
		return ExecResult{Output: "ok"}, nil
	}), 8)
	if err != nil || res.Txs[0].Output != "ok" || res.FinalState()[testKey(1)] != "x" {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestRunExecuteErrorAborts(t *testing.T) {
	boom := errors.New("boom")
	for _, workers := range []int{1, 2, 4, 8} {
		var after atomic.Int64
		_, err := Run(context.Background(), 500, ExecutorFunc(func(i, inc int, v *TxView) (ExecResult, error) {
			if i == 37 {
				return ExecResult{}, boom
			}
			if i > 200 {
				after.Add(1)
			}
			if _, _, err := v.Read(testKey(i % 5)); err != nil {
				return ExecResult{}, err
			}
			v.Write(testKey(i%5), i)
			return ExecResult{}, nil
		}), workers)
		if !errors.Is(err, boom) {
			t.Fatalf("workers=%d: err %v", workers, err)
		}
		if workers == 1 && after.Load() != 0 {
			t.Fatalf("workers=1 kept executing after the error")
		}
	}
}

func TestRunPanicBecomesError(t *testing.T) {
	_, err := Run(context.Background(), 50, ExecutorFunc(func(i, inc int, v *TxView) (ExecResult, error) {
		if i == 10 {
			panic("kaboom")
		}
		return ExecResult{}, nil
	}), 4)
	if err == nil || !strings.Contains(err.Error(), "kaboom") {
		t.Fatalf("err %v", err)
	}
}

func TestRunContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, 10, ExecutorFunc(func(int, int, *TxView) (ExecResult, error) {
		t.Error("executed with cancelled context")
		return ExecResult{}, nil
	}), 2); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	for _, workers := range []int{1, 4} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		start := time.Now()
		_, err := Run(ctx, 100000, ExecutorFunc(func(i, inc int, v *TxView) (ExecResult, error) {
			time.Sleep(100 * time.Microsecond)
			if _, _, err := v.Read(testKey(0)); err != nil {
				return ExecResult{}, err
			}
			v.Write(testKey(0), i)
			return ExecResult{}, nil
		}), workers)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("workers=%d: err %v", workers, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("cancellation took %v", d)
		}
	}
}

// An executor that ignores the dependency error must still produce the
// sequential result: the view remembers the ESTIMATE hit.
func TestRunSwallowedDependency(t *testing.T) {
	w := allConflictWorkload(100)
	want := runSequential(&w)
	for _, workers := range []int{2, 4, 8} {
		res, err := Run(context.Background(), len(w.txs), ExecutorFunc(func(i, inc int, v *TxView) (ExecResult, error) {
			x, found, _ := v.Read(testKey(0)) // error ignored on purpose
			acc := uint64(i+1) * 0x9E3779B97F4A7C15
			var y uint64 // storage value of key 0 is 0
			if found {
				y = x.(uint64)
			}
			acc = (acc ^ y) * 1099511628211
			v.Write(testKey(0), acc^0)
			acc = acc*31 + 7
			return ExecResult{Output: acc}, nil
		}), workers)
		if err != nil {
			t.Fatal(err)
		}
		for i := range res.Txs {
			if res.Txs[i].Output != want.outputs[i] {
				t.Fatalf("workers=%d: tx %d output mismatch", workers, i)
			}
		}
	}
}

func TestRunStatsConflicts(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	w := withTiming(rng, allConflictWorkload(200))
	want := runSequential(&w)
	res := checkRun(t, &w, 4, want)
	t.Logf("all-conflict workers=4 stats: %+v", res.Stats)
	w = independentWorkload(200)
	res = checkRun(t, &w, 4, runSequential(&w))
	t.Logf("independent workers=4 stats: %+v", res.Stats)
	if res.Stats.Aborts != 0 || res.Stats.DependencyHits != 0 {
		t.Fatalf("independent workload should not conflict: %+v", res.Stats)
	}
}

// FuzzScheduler builds a workload from bytes and checks the parallel result
// against the sequential one.
func FuzzScheduler(f *testing.F) {
	f.Add([]byte{10, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Add([]byte{60, 7, 1, 255, 254, 253, 252, 251})
	f.Add([]byte{30, 1, 15, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee})
	f.Add([]byte{64, 8, 2, 3, 7, 11, 13, 17, 19, 23, 29, 31})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 3 {
			return
		}
		n := int(data[0])%64 + 1
		workers := int(data[1])%8 + 1
		keys := int(data[2])%16 + 1
		body := data[3:]
		w := workload{name: "fuzz", keys: keys, txs: make([]txSpec, n)}
		pos := 0
		next := func() byte {
			if len(body) == 0 {
				return 0
			}
			b := body[pos%len(body)] ^ byte(pos/len(body))
			pos++
			return b
		}
		for i := range w.txs {
			h := next()
			nops := int(h % 6)
			for j := 0; j < nops; j++ {
				b := next()
				w.txs[i].ops = append(w.txs[i].ops, op{opKind(b & 3), int(b>>2) % keys})
			}
			if h&0x80 != 0 {
				w.txs[i].spin = int(h) * 16
			}
		}
		checkRun(t, &w, workers, runSequential(&w))
	})
}
