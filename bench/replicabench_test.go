package bench

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestReplicaBenchQuick runs `kestrel bench replica` on a tiny workload: every
// phase runs for real (sequencer with its stream, two replicas, a catch-up
// replica, a bootstrap), the figures are consistent with each other and the
// JSON report reads back. Nothing here asserts a speed.
func TestReplicaBenchQuick(t *testing.T) {
	rep, err := RunReplica(context.Background(), ReplicaOptions{Kinds: []Kind{KindERC20}, Txs: 400, Senders: 40, Rate: 200,
		LagDuration: time.Second, BootstrapAccounts: 2_000, Seed: 3, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Workloads) != 1 || rep.Bootstrap == nil {
		t.Fatalf("report %+v", rep)
	}
	w := rep.Workloads[0]
	// The catch-up replica applied every transaction of the run: the backlog
	// and the lag phase's.
	if w.CatchUpTxs != 400+200 {
		t.Errorf("catch-up covered %d transactions, want 600", w.CatchUpTxs)
	}
	if w.LagSamples == 0 || w.LagP50 > w.LagP99 || w.LagP99 > w.LagMax {
		t.Errorf("lag figures %v %v %v over %d samples", w.LagP50, w.LagP99, w.LagMax, w.LagSamples)
	}
	if w.MiniBytesPerTx <= 0 || w.TotalBytesPerTx < w.MiniBytesPerTx {
		t.Errorf("bytes per tx %.1f / %.1f", w.MiniBytesPerTx, w.TotalBytesPerTx)
	}
	for name, got := range map[string][2]float64{
		"catch-up ratio": {w.CatchUpRatio, w.CatchUpTxPerSec / w.ExecAloneTxPerSec},
		"apply ratio":    {w.ApplyRatio, w.ApplyTxPerSec / w.ExecAloneTxPerSec},
		"re-exec ratio":  {w.ReexecRatio, w.CatchUpTxPerSec / w.ReexecTxPerSec},
	} {
		if got[0] <= 0 || math.Abs(got[0]-got[1]) > 1e-9*got[1] {
			t.Errorf("%s %v, recomputed %v", name, got[0], got[1])
		}
	}
	if b := rep.Bootstrap; b.Accounts != 2_000 || b.Bytes <= 0 || b.Download <= 0 || b.Total < b.Download {
		t.Errorf("bootstrap %+v", b)
	}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back ReplicaReport
	if err := json.Unmarshal(data, &back); err != nil || len(back.Workloads) != 1 || back.Workloads[0].CatchUpTxs != w.CatchUpTxs {
		t.Fatalf("report does not read back: %v", err)
	}
}
