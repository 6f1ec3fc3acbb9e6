package blockstm

import (
	"context"
	"fmt"
	"testing"
)

// TestDeltasAndPredictions runs a hot counter: most transactions add to it
// blindly (delta writes), every tenth reads it and writes it back increased
// (a full write), and every transaction writes a key of its own. What the
// readers saw and the final counter must equal sequential execution, with and
// without predicted writes, at any worker count.
func TestDeltasAndPredictions(t *testing.T) {
	const n = 300
	counter := testKey(1000)
	ops := Ops{
		Fold:  func(base, delta any) any { return base.(int) + delta.(int) },
		Equal: func(a, b any) bool { return a == b },
		Base: func(k Key) any {
			if k == counter {
				return 7
			}
			return 0
		},
	}
	// Sequential reference.
	want := make([]int, n)
	c := 7
	for i := range n {
		if i%10 == 0 {
			want[i] = c
			c += i
		} else {
			c += i
		}
	}
	exec := ExecutorFunc(func(i, _ int, v *TxView) (ExecResult, error) {
		v.Write(testKey(i), i)
		if i%10 != 0 {
			v.WriteDelta(counter, i)
			return ExecResult{Output: 0}, nil
		}
		val, found, err := v.Read(counter)
		if err != nil {
			return ExecResult{}, err
		}
		cur := 7
		if found {
			cur = val.(int)
		}
		v.Write(counter, cur+i)
		return ExecResult{Output: cur}, nil
	})
	var predicted [][]Key
	for i := range n {
		var keys []Key
		if i%10 == 0 {
			keys = []Key{counter}
		}
		predicted = append(predicted, keys)
	}
	for _, workers := range []int{1, 2, 4, 8} {
		for _, pred := range [][][]Key{nil, predicted} {
			t.Run(fmt.Sprintf("workers=%d/predicted=%v", workers, pred != nil), func(t *testing.T) {
				res, err := RunWithOptions(context.Background(), n, exec, Options{Workers: workers, Ops: ops, Predicted: pred})
				if err != nil {
					t.Fatal(err)
				}
				for i := range n {
					if i%10 == 0 && res.Txs[i].Output.(int) != want[i] {
						t.Fatalf("tx %d read %d, want %d", i, res.Txs[i].Output, want[i])
					}
				}
				final, _, st := res.MV.Resolve(counter, n)
				if st != ReadOK || final.(int) != c {
					t.Fatalf("final counter %v (%v), want %d", final, st, c)
				}
				if res.MV.Cells() < n+1 {
					t.Fatalf("%d cells, want at least %d", res.MV.Cells(), n+1)
				}
				seen := 0
				res.MV.Final(3, func(_ int, k *Key, v Versions) {
					seen++
					if k == nil || v.Len() == 0 || v.At(v.Len()-1).Estimate {
						t.Errorf("key %v: bad final versions", k)
					}
				})
				if seen != n+1 {
					t.Fatalf("Final visited %d keys, want %d", seen, n+1)
				}
			})
		}
	}
}

// TestValidationByValue: a read whose version changed but whose value did
// not stays valid when Ops.Equal is set.
func TestValidationByValue(t *testing.T) {
	k := testKey(1)
	mv := NewMVMemoryWithOps(3, Ops{Equal: func(a, b any) bool { return a == b }, Base: func(Key) any { return 5 }})
	mv.Record(Version{0, 0}, nil, []WriteEntry{{Key: k, Value: 5}})
	mv.Record(Version{2, 0}, []ReadDescriptor{{Key: k, Found: true, Version: Version{0, 0}, Value: 5}}, nil)
	if !mv.ValidateReadSet(2) {
		t.Fatal("unchanged read invalid")
	}
	mv.Record(Version{1, 0}, nil, []WriteEntry{{Key: k, Value: 5}}) // same value, new version
	if !mv.ValidateReadSet(2) {
		t.Fatal("same value from another writer must stay valid")
	}
	mv.Record(Version{1, 1}, nil, []WriteEntry{{Key: k, Value: 6}})
	if mv.ValidateReadSet(2) {
		t.Fatal("changed value must be invalid")
	}
	mv.ConvertWritesToEstimates(1)
	if mv.ValidateReadSet(2) {
		t.Fatal("estimate must be invalid")
	}
	if b, ok := mv.EstimateBelow(k, 2); !ok || b != 1 {
		t.Fatalf("EstimateBelow = %d %v", b, ok)
	}
}
