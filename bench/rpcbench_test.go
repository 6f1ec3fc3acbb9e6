package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// The RPC benchmark's tests check that a report is produced and computed
// right, never a timing.

func TestRPCBenchQuick(t *testing.T) {
	o := QuickRPCOptions()
	o.Dir = t.TempDir()
	o.NodeLogger = testLogger(t)
	if testing.Verbose() {
		o.Progress = os.Stderr
	}
	rep, err := RunRPC(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Setup.Accounts != o.Accounts || rep.Setup.Txs != o.Txs || rep.Setup.Verified == 0 || rep.Setup.TokenHolders <= o.Accounts {
		t.Fatalf("setup %+v", rep.Setup)
	}
	if len(rep.Methods) != len(rpcMethods) {
		t.Fatalf("%d methods reported, want %d", len(rep.Methods), len(rpcMethods))
	}
	for i, mr := range rep.Methods {
		if mr.Key != rpcMethods[i].key || mr.Calls != rpcMethods[i].calls {
			t.Fatalf("method %d: %s with %d calls", i, mr.Key, mr.Calls)
		}
		if len(mr.Closed) != o.Runs || len(mr.Open) != o.Runs {
			t.Fatalf("%s: %d closed and %d open runs, want %d", mr.Name, len(mr.Closed), len(mr.Open), o.Runs)
		}
		for _, phase := range [][]RPCMethodRun{mr.Closed, mr.Open} {
			for _, run := range phase {
				for _, l := range []*RPCLoad{run.Kestrel, run.Geth} {
					if l == nil || l.Requests == 0 || l.Errors != 0 || l.Calls != l.Requests*mr.Calls || l.P50 > l.P99 || l.P99 > l.Max {
						t.Fatalf("%s run %d: %+v", mr.Name, run.Run, l)
					}
				}
			}
		}
		m := mr.Median
		if m.KestrelReqPerSec != mr.Closed[0].Kestrel.ReqPerSec || m.GethReqPerSec != mr.Closed[0].Geth.ReqPerSec {
			t.Fatalf("%s: medians of one run differ from it: %+v", mr.Name, m)
		}
		if want := m.KestrelReqPerSec / m.GethReqPerSec; math.Abs(m.Ratio-want) > 1e-9*want {
			t.Fatalf("%s: ratio %v, want %v", mr.Name, m.Ratio, want)
		}
		if (mr.Target > 0) != (m.TargetMet != nil) || (m.TargetMet != nil && *m.TargetMet != (m.Ratio >= mr.Target)) {
			t.Fatalf("%s: target %v, met %v, ratio %v", mr.Name, mr.Target, m.TargetMet, m.Ratio)
		}
		wantRate := float64(o.OpenPercent) / 100 * min(m.KestrelReqPerSec, m.GethReqPerSec)
		if math.Abs(m.OpenRate-wantRate) > 1e-9*wantRate || mr.Open[0].Kestrel.Offered != mr.Open[0].Geth.Offered {
			t.Fatalf("%s: open rate %v, want %v on both", mr.Name, m.OpenRate, wantRate)
		}
		if m.LowerP99 == nil || *m.LowerP99 != (m.OpenKestrelP99Ms < m.OpenGethP99Ms) {
			t.Fatalf("%s: lower p99 %v with %v vs %v", mr.Name, m.LowerP99, m.OpenKestrelP99Ms, m.OpenGethP99Ms)
		}
	}
	ws := rep.WebSocket
	if ws == nil || len(ws.Steps) == 0 || ws.Steps[0].Subscribers != o.WSStart {
		t.Fatalf("websocket report %+v", ws)
	}
	for _, s := range ws.Steps {
		if s.Failed != 0 || s.MiniBlocks == 0 || s.Frames == 0 || s.KeptUp+s.Lagging+s.Missing != s.Subscribers || s.OK != (s.Reason == "") {
			t.Fatalf("websocket step %+v", s)
		}
	}
	if ws.BackgroundErrors != 0 {
		t.Fatalf("%d background errors", ws.BackgroundErrors)
	}

	var table bytes.Buffer
	rep.WriteTable(&table)
	line := regexp.MustCompile(`^rpc (.+): kestrel (\d+) req/s, geth (\d+) req/s, ratio (\d+\.\d\d)`)
	found := 0
	for _, l := range strings.Split(table.String(), "\n") {
		if m := line.FindStringSubmatch(l); m != nil {
			found++
		}
	}
	if found != len(rpcMethods) || !strings.Contains(table.String(), "ws miniBlocks: ") {
		t.Fatalf("table has %d result lines:\n%s", found, table.String())
	}
	path := filepath.Join(t.TempDir(), "rpc.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back RPCReport
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Methods) != len(rep.Methods) || back.Methods[0].Median.Ratio != rep.Methods[0].Median.Ratio || back.WebSocket == nil {
		t.Fatal("JSON report does not round-trip")
	}
}

func load(reqPerSec float64, p50, p99 time.Duration) *RPCLoad {
	return &RPCLoad{ReqPerSec: reqPerSec, P50: p50, P99: p99, ServiceP50: p50, ServiceP99: p99}
}

func TestRPCSummaryMediansAndRatios(t *testing.T) {
	ms := time.Millisecond
	mr := RPCMethodReport{Target: 3, Closed: []RPCMethodRun{
		{Run: 1, Kestrel: load(300, ms, 9*ms), Geth: load(50, 2*ms, 20*ms)},
		{Run: 2, Kestrel: load(100, 3*ms, 5*ms), Geth: load(100, ms, 10*ms)},
		{Run: 3, Kestrel: load(200, 2*ms, 7*ms), Geth: load(70, 3*ms, 30*ms)},
	}}
	mr.summarizeClosed()
	m := mr.Median
	if m.KestrelReqPerSec != 200 || m.GethReqPerSec != 70 || m.KestrelP99Ms != 7 || m.GethP99Ms != 20 || m.KestrelP50Ms != 2 {
		t.Fatalf("medians %+v", m)
	}
	if math.Abs(m.Ratio-200.0/70) > 1e-12 || m.TargetMet == nil || *m.TargetMet {
		t.Fatalf("ratio %v met %v, want %v not met", m.Ratio, m.TargetMet, 200.0/70)
	}
	mr.Target = 2
	mr.summarizeClosed()
	if !*mr.Median.TargetMet {
		t.Fatal("2.86x should meet a 2x target")
	}
	mr.Open = []RPCMethodRun{
		{Kestrel: &RPCLoad{Offered: 35, ServiceP50: ms, ServiceP99: 4 * ms, P99: 5 * ms}, Geth: &RPCLoad{Offered: 35, ServiceP50: ms, ServiceP99: 6 * ms, P99: 7 * ms}},
		{Kestrel: &RPCLoad{Offered: 35, ServiceP50: ms, ServiceP99: 2 * ms, P99: 3 * ms}, Geth: &RPCLoad{Offered: 35, ServiceP50: ms, ServiceP99: 8 * ms, P99: 9 * ms}},
	}
	mr.summarizeOpen()
	m = mr.Median
	if m.OpenRate != 35 || m.OpenKestrelP99Ms != 3 || m.OpenGethP99Ms != 7 || m.OpenKestrelSlotP99Ms != 4 || m.OpenP99Ratio != 7.0/3 || m.LowerP99 == nil || !*m.LowerP99 {
		t.Fatalf("open summary %+v", m)
	}
}

func TestCheckAnswer(t *testing.T) {
	for _, c := range []struct {
		body  string
		calls int
		ok    bool
	}{
		{`{"jsonrpc":"2.0","id":1,"result":"0x1"}`, 1, true},
		{`{"jsonrpc":"2.0","id":1,"result":{"status":"0x1","logs":[]}}`, 1, true},
		{`{"jsonrpc":"2.0","id":1,"result":null}`, 1, false},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"x"}}`, 1, false},
		{`[{"jsonrpc":"2.0","id":1,"result":"0x1"},{"jsonrpc":"2.0","id":2,"result":"0x2"}]`, 2, true},
		{`[{"jsonrpc":"2.0","id":1,"result":"0x1"},{"jsonrpc":"2.0","id":2,"error":{"code":1,"message":"y"}}]`, 2, false},
		{`[{"jsonrpc":"2.0","id":1,"result":"0x1"}]`, 2, false},
		{`not json`, 1, false},
	} {
		if err := checkAnswer([]byte(c.body), c.calls); (err == nil) != c.ok {
			t.Errorf("checkAnswer(%s, %d) = %v, want ok %v", c.body, c.calls, err, c.ok)
		}
	}
}

func TestParseMiniBlockFrame(t *testing.T) {
	frame := `{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x3f2a","result":{"index":"0x1f4","blockNumber":"0x2",` +
		`"indexInBlock":"0x3","timestamp":"0x18bcfe56800","blockTimestamp":"0x6553f100","transactions":[`
	idx, ts, err := parseMiniBlockFrame([]byte(frame))
	if err != nil || idx != 500 || ts != 0x18bcfe56800 {
		t.Fatalf("got %d %d %v", idx, ts, err)
	}
	for _, bad := range []string{
		`{"jsonrpc":"2.0","id":1,"result":"0x1"}`,
		`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x1","result":{"error":"gone","missingIndex":"0x5"}}}`,
		`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x1","result":{"index":"0xzz","timestamp":"0x1"`,
	} {
		if _, _, err := parseMiniBlockFrame([]byte(bad)); err == nil {
			t.Errorf("parsed %s", bad)
		}
	}
}

func TestRPCMethodBodiesDeterministic(t *testing.T) {
	w := smallWorkload(t, KindERC20, 20, 0, 10)
	fix := &rpcFixture{token: w.Token, txs: []common.Hash{fakeHash(1), fakeHash(2), fakeHash(3)}}
	for _, s := range w.Senders {
		fix.holders = append(fix.holders, s.Addr)
	}
	for _, m := range rpcMethods {
		a, b := m.bodies(9, fix), m.bodies(9, fix)
		if len(a) != rpcBodies {
			t.Fatalf("%s: %d bodies", m.key, len(a))
		}
		for i := range a {
			if !bytes.Equal(a[i], b[i]) {
				t.Fatalf("%s: body %d differs between two builds", m.key, i)
			}
			if !json.Valid(a[i]) {
				t.Fatalf("%s: body %d is not JSON: %s", m.key, i, a[i])
			}
		}
		var batch []json.RawMessage
		if m.calls > 1 && (json.Unmarshal(a[0], &batch) != nil || len(batch) != m.calls) {
			t.Fatalf("%s: want a batch of %d: %s", m.key, m.calls, a[0])
		}
	}
	if RPCProfilePath("/x/cpu.pprof", "call") != "/x/cpu-call.pprof" {
		t.Fatal(RPCProfilePath("/x/cpu.pprof", "call"))
	}
}
