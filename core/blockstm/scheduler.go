package blockstm

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// TxStatus is the scheduling status of one transaction.
type TxStatus uint8

const (
	ReadyToExecute TxStatus = iota
	Executing
	Executed
	Aborting
)

func (s TxStatus) String() string {
	switch s {
	case ReadyToExecute:
		return "ReadyToExecute"
	case Executing:
		return "Executing"
	case Executed:
		return "Executed"
	case Aborting:
		return "Aborting"
	}
	return "TxStatus(?)"
}

// TaskKind is the kind of a scheduler task.
type TaskKind uint8

const (
	NoTask TaskKind = iota
	ExecutionTask
	ValidationTask
)

// Task is a unit of work handed out by the Scheduler.
type Task struct {
	Kind    TaskKind
	Version Version
}

type txState struct {
	mu          sync.Mutex
	status      TxStatus
	incarnation int
	// dependents waiting for this transaction to finish executing; guarded by depMu.
	depMu      sync.Mutex
	dependents []int
}

// Scheduler implements Block-STM's collaborative scheduler (Algorithms 4-5
// of the paper): two shared counters hand out execution and validation tasks
// in transaction order; aborted validations and dependency resumptions lower
// them again.
type Scheduler struct {
	n              int
	executionIdx   atomic.Int64
	validationIdx  atomic.Int64
	decreaseCnt    atomic.Int64
	numActiveTasks atomic.Int64
	doneMarker     atomic.Bool
	txs            []txState
}

// NewScheduler returns a scheduler for n transactions, all ReadyToExecute
// with incarnation 0.
func NewScheduler(n int) *Scheduler {
	return &Scheduler{n: n, txs: make([]txState, n)}
}

// Done reports whether all transactions are executed and validated.
func (s *Scheduler) Done() bool { return s.doneMarker.Load() }

// Status returns a transaction's current status and incarnation.
func (s *Scheduler) Status(txIndex int) (TxStatus, int) {
	t := &s.txs[txIndex]
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status, t.incarnation
}

func decreaseTo(v *atomic.Int64, target int64) {
	for {
		cur := v.Load()
		if cur <= target || v.CompareAndSwap(cur, target) {
			return
		}
	}
}

func (s *Scheduler) decreaseExecutionIdx(target int) {
	decreaseTo(&s.executionIdx, int64(target))
	s.decreaseCnt.Add(1)
}

func (s *Scheduler) decreaseValidationIdx(target int) {
	decreaseTo(&s.validationIdx, int64(target))
	s.decreaseCnt.Add(1)
}

func (s *Scheduler) checkDone() {
	observed := s.decreaseCnt.Load()
	n := int64(s.n)
	if s.executionIdx.Load() >= n && s.validationIdx.Load() >= n &&
		s.numActiveTasks.Load() == 0 && observed == s.decreaseCnt.Load() {
		s.doneMarker.Store(true)
	}
}

// tryIncarnate moves txIndex from ReadyToExecute to Executing. On failure it
// releases the active task the caller acquired.
func (s *Scheduler) tryIncarnate(txIndex int) (Version, bool) {
	if txIndex < s.n {
		t := &s.txs[txIndex]
		t.mu.Lock()
		if t.status == ReadyToExecute {
			t.status = Executing
			inc := t.incarnation
			t.mu.Unlock()
			return Version{txIndex, inc}, true
		}
		t.mu.Unlock()
	}
	s.numActiveTasks.Add(-1)
	return Version{}, false
}

func (s *Scheduler) nextVersionToExecute() (Version, bool) {
	if s.executionIdx.Load() >= int64(s.n) {
		s.checkDone()
		return Version{}, false
	}
	s.numActiveTasks.Add(1)
	idx := int(s.executionIdx.Add(1) - 1)
	return s.tryIncarnate(idx)
}

func (s *Scheduler) nextVersionToValidate() (Version, bool) {
	if s.validationIdx.Load() >= int64(s.n) {
		s.checkDone()
		return Version{}, false
	}
	s.numActiveTasks.Add(1)
	idx := int(s.validationIdx.Add(1) - 1)
	if idx < s.n {
		t := &s.txs[idx]
		t.mu.Lock()
		st, inc := t.status, t.incarnation
		t.mu.Unlock()
		if st == Executed {
			return Version{idx, inc}, true
		}
	}
	s.numActiveTasks.Add(-1)
	return Version{}, false
}

// NextTask returns the next task, preferring validation of lower
// transactions; Kind is NoTask when nothing is available right now.
func (s *Scheduler) NextTask() Task {
	if s.validationIdx.Load() < s.executionIdx.Load() {
		if v, ok := s.nextVersionToValidate(); ok {
			return Task{ValidationTask, v}
		}
	} else if v, ok := s.nextVersionToExecute(); ok {
		return Task{ExecutionTask, v}
	}
	return Task{}
}

// AddDependency suspends txIndex until blocking has finished executing. It
// returns false if blocking already finished (the caller should re-execute
// immediately). On true the execution task is released.
func (s *Scheduler) AddDependency(txIndex, blocking int) bool {
	b := &s.txs[blocking]
	b.depMu.Lock()
	b.mu.Lock()
	executed := b.status == Executed
	b.mu.Unlock()
	if executed {
		b.depMu.Unlock()
		return false
	}
	t := &s.txs[txIndex]
	t.mu.Lock()
	if t.status != Executing {
		t.mu.Unlock()
		b.depMu.Unlock()
		panic(fmt.Sprintf("blockstm: AddDependency on tx %d in status %v", txIndex, t.status))
	}
	t.status = Aborting
	t.mu.Unlock()
	b.dependents = append(b.dependents, txIndex)
	b.depMu.Unlock()
	s.numActiveTasks.Add(-1)
	return true
}

func (s *Scheduler) setReady(txIndex int) {
	t := &s.txs[txIndex]
	t.mu.Lock()
	if t.status != Aborting {
		t.mu.Unlock()
		panic(fmt.Sprintf("blockstm: setReady on tx %d in status %v", txIndex, t.status))
	}
	t.incarnation++
	t.status = ReadyToExecute
	t.mu.Unlock()
}

// FinishExecution marks v executed, resumes its dependents and returns a
// validation task for v when it can be validated right away.
func (s *Scheduler) FinishExecution(v Version, wroteNewLocation bool) Task {
	t := &s.txs[v.TxIndex]
	t.mu.Lock()
	if t.status != Executing || t.incarnation != v.Incarnation {
		st, inc := t.status, t.incarnation
		t.mu.Unlock()
		panic(fmt.Sprintf("blockstm: FinishExecution(%v) but tx is %v/%d", v, st, inc))
	}
	t.status = Executed
	t.mu.Unlock()

	t.depMu.Lock()
	deps := t.dependents
	t.dependents = nil
	t.depMu.Unlock()
	if len(deps) > 0 {
		minDep := s.n
		for _, d := range deps {
			s.setReady(d)
			minDep = min(minDep, d)
		}
		s.decreaseExecutionIdx(minDep)
	}

	if s.validationIdx.Load() > int64(v.TxIndex) {
		if !wroteNewLocation {
			return Task{ValidationTask, v}
		}
		s.decreaseValidationIdx(v.TxIndex)
	}
	s.numActiveTasks.Add(-1)
	return Task{}
}

// TryValidationAbort moves v from Executed to Aborting; only one validator
// of a given incarnation succeeds.
func (s *Scheduler) TryValidationAbort(v Version) bool {
	t := &s.txs[v.TxIndex]
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.incarnation == v.Incarnation && t.status == Executed {
		t.status = Aborting
		return true
	}
	return false
}

// FinishValidation completes a validation task; if it aborted the
// transaction it returns the re-execution task when it can be run right away.
func (s *Scheduler) FinishValidation(txIndex int, aborted bool) Task {
	if aborted {
		s.setReady(txIndex)
		s.decreaseValidationIdx(txIndex + 1)
		if s.executionIdx.Load() > int64(txIndex) {
			if v, ok := s.tryIncarnate(txIndex); ok {
				return Task{ExecutionTask, v}
			}
			return Task{} // tryIncarnate released the task
		}
	}
	s.numActiveTasks.Add(-1)
	return Task{}
}
