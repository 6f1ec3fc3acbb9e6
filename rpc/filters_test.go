package rpc

import (
	"context"
	"encoding/json"
	"math/big"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// growBackend is the fake backend with a chain that grows: seal appends sealed
// blocks while the server may be reading (guarded by mu).
type growBackend struct {
	*fakeBackend
	t     testing.TB
	mu    sync.RWMutex
	nonce uint64
	// failHeaders makes HeaderByRef fail (backend error path).
	failHeaders atomic.Bool
}

func newGrowBackend(t testing.TB) *growBackend {
	return &growBackend{fakeBackend: newFakeBackend(t), t: t, nonce: 100}
}

func (g *growBackend) HeadNumber() uint64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.fakeBackend.HeadNumber()
}

func (g *growBackend) BlockByRef(ctx context.Context, ref BlockRef) (*Block, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.fakeBackend.BlockByRef(ctx, ref)
}

func (g *growBackend) HeaderByRef(ctx context.Context, ref BlockRef) (*types.Header, common.Hash, error) {
	if g.failHeaders.Load() {
		return nil, common.Hash{}, errTest
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.fakeBackend.HeaderByRef(ctx, ref)
}

// seal seals a block with one transaction per entry of logs, emitting those logs.
func (g *growBackend) seal(logs ...[]*types.Log) *Block {
	g.t.Helper()
	return g.sealT(g.t, logs...)
}

// sealT is seal reporting failures to t (fuzz targets must not use the F).
func (g *growBackend) sealT(t testing.TB, logs ...[]*types.Log) *Block {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.c
	txs := make([]*types.Transaction, len(logs))
	for i := range logs {
		tx, err := types.SignNewTx(c.keys[0], c.signer, &types.DynamicFeeTx{ChainID: c.cfg.ChainID, Nonce: g.nonce,
			GasTipCap: big.NewInt(gwei), GasFeeCap: big.NewInt(100 * gwei), Gas: 50000, To: &c.contract})
		if err != nil {
			t.Fatal(err)
		}
		g.nonce++
		txs[i] = tx
	}
	return c.makeBlock(t, c.blocks[len(c.blocks)-1].Header, txs, logs, true)
}

// sealN seals n blocks with one log each, matching logOf(c.topicA).
func (g *growBackend) sealN(n int) []*Block {
	var out []*Block
	for range n {
		out = append(out, g.seal([]*types.Log{g.logOf(g.c.topicA)}))
	}
	return out
}

func (g *growBackend) logOf(topics ...common.Hash) *types.Log {
	return &types.Log{Address: g.c.contract, Topics: topics, Data: []byte{0x42}}
}

func blockLogs(bs ...*Block) []*types.Log {
	out := []*types.Log{}
	for _, b := range bs {
		for _, r := range b.Receipts {
			out = append(out, r.Logs...)
		}
	}
	return out
}

func hashesOf(bs ...*Block) []common.Hash {
	out := []common.Hash{}
	for _, b := range bs {
		out = append(out, b.Hash)
	}
	return out
}

// fakeClock replaces a filterSet's clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func useFakeClock(s *Server) *fakeClock {
	c := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s.filters().now = c.now
	return c
}

func installFilter(t testing.TB, s *Server, method string, params ...any) string {
	t.Helper()
	var id string
	if err := json.Unmarshal(result(t, s, method, params...), &id); err != nil {
		t.Fatal(err)
	}
	return id
}

func wantFilterError(t testing.TB, s *Server, code int, msg string, method string, params ...any) *respError {
	t.Helper()
	e := callErr(t, s, reqBody(t, 1, method, params...))
	if e.Code != code || e.Message != msg {
		t.Errorf("%s %v: got error %d %q, want %d %q", method, params, e.Code, e.Message, code, msg)
	}
	return e
}

func wantNotFound(t testing.TB, s *Server, method, id string) {
	t.Helper()
	wantFilterError(t, s, CodeDefault, "filter not found", method, id)
}

var filterIDPattern = regexp.MustCompile(`^0x[1-9a-f][0-9a-f]{0,31}$`)

func TestFilterBlockChanges(t *testing.T) {
	g := newGrowBackend(t)
	s := newTestServer(t, g, Config{})
	id := installFilter(t, s, "eth_newBlockFilter")
	if !filterIDPattern.MatchString(id) {
		t.Fatalf("filter id %q is not a 128-bit quantity", id)
	}
	eqJSON(t, "no blocks yet", result(t, s, "eth_getFilterChanges", id), []byte(`[]`))

	b := g.sealN(2)
	eqJSON(t, "two blocks", result(t, s, "eth_getFilterChanges", id), mustJSON(t, hashesOf(b...)))
	eqJSON(t, "changes only once", result(t, s, "eth_getFilterChanges", id), []byte(`[]`))
	b3 := g.seal()
	eqJSON(t, "third block", result(t, s, "eth_getFilterChanges", id), mustJSON(t, hashesOf(b3)))

	// A second filter starts at the head it was installed at.
	id2 := installFilter(t, s, "eth_newBlockFilter")
	if id2 == id {
		t.Fatal("same id twice")
	}
	b4 := g.seal()
	eqJSON(t, "first filter", result(t, s, "eth_getFilterChanges", id), mustJSON(t, hashesOf(b4)))
	eqJSON(t, "second filter", result(t, s, "eth_getFilterChanges", id2), mustJSON(t, hashesOf(b4)))

	// A block filter has no logs to run.
	wantNotFound(t, s, "eth_getFilterLogs", id)

	if got := result(t, s, "eth_uninstallFilter", id); string(got) != "true" {
		t.Errorf("uninstall: %s", got)
	}
	if got := result(t, s, "eth_uninstallFilter", id); string(got) != "false" {
		t.Errorf("second uninstall: %s", got)
	}
	wantNotFound(t, s, "eth_getFilterChanges", id)
	eqJSON(t, "other filter unaffected", result(t, s, "eth_getFilterChanges", id2), []byte(`[]`))
}

func TestFilterLogChanges(t *testing.T) {
	g := newGrowBackend(t)
	s := newTestServer(t, g, Config{})
	c := g.c
	head := g.HeadNumber()
	other := common.HexToAddress("0x00000000000000000000000000000000000000aa")

	all := installFilter(t, s, "eth_newFilter", map[string]any{})
	byTopic := installFilter(t, s, "eth_newFilter", map[string]any{"address": c.contract, "topics": []any{nil, c.topicB}})
	// Only block head+2, though it starts in the past relative to it.
	ranged := installFilter(t, s, "eth_newFilter", map[string]any{"fromBlock": hexutil.Uint64(head + 2), "toBlock": hexutil.Uint64(head + 2)})
	// From the block after next on, no upper end.
	open := installFilter(t, s, "eth_newFilter", map[string]any{"fromBlock": hexutil.Uint64(head + 2), "toBlock": "latest"})
	past := installFilter(t, s, "eth_newFilter", map[string]any{"fromBlock": "earliest", "toBlock": "0x1"})
	byHash := installFilter(t, s, "eth_newFilter", map[string]any{"blockHash": c.blocks[2].Hash})

	for _, id := range []string{all, byTopic, ranged, open, past, byHash} {
		eqJSON(t, "nothing new", result(t, s, "eth_getFilterChanges", id), []byte(`[]`))
	}

	match := g.logOf(c.topicA, c.topicB)
	otherAddr := &types.Log{Address: other, Topics: []common.Hash{c.topicA, c.topicB}}
	short := g.logOf(c.topicA) // too few topics for byTopic
	b1 := g.seal([]*types.Log{match, otherAddr}, nil, []*types.Log{short})
	b2 := g.seal([]*types.Log{g.logOf(c.topicB, c.topicB)})
	b3 := g.seal() // no logs

	eqJSON(t, "all", result(t, s, "eth_getFilterChanges", all), mustJSON(t, blockLogs(b1, b2, b3)))
	eqJSON(t, "all again", result(t, s, "eth_getFilterChanges", all), []byte(`[]`))
	eqJSON(t, "by topic", result(t, s, "eth_getFilterChanges", byTopic),
		mustJSON(t, []*types.Log{b1.Receipts[0].Logs[0], b2.Receipts[0].Logs[0]}))
	eqJSON(t, "ranged", result(t, s, "eth_getFilterChanges", ranged), mustJSON(t, blockLogs(b2)))
	eqJSON(t, "open", result(t, s, "eth_getFilterChanges", open), mustJSON(t, blockLogs(b2, b3)))
	eqJSON(t, "past", result(t, s, "eth_getFilterChanges", past), []byte(`[]`))
	eqJSON(t, "by hash of an old block", result(t, s, "eth_getFilterChanges", byHash), []byte(`[]`))

	b4 := g.seal([]*types.Log{g.logOf(c.topicA)})
	eqJSON(t, "ranged after its end", result(t, s, "eth_getFilterChanges", ranged), []byte(`[]`))
	eqJSON(t, "open goes on", result(t, s, "eth_getFilterChanges", open), mustJSON(t, blockLogs(b4)))
	eqJSON(t, "all goes on", result(t, s, "eth_getFilterChanges", all), mustJSON(t, blockLogs(b4)))

	// Logs are printed as eth_getLogs prints them.
	eqJSON(t, "same as eth_getLogs", mustJSON(t, blockLogs(b4)),
		result(t, s, "eth_getLogs", map[string]any{"blockHash": b4.Hash}))
}

func TestFilterGetFilterLogs(t *testing.T) {
	g := newGrowBackend(t)
	s := newTestServer(t, g, Config{})
	c := g.c
	crits := []map[string]any{
		{"fromBlock": "0x0", "address": c.contract},
		{"fromBlock": "earliest", "toBlock": "latest", "topics": []any{c.topicA}},
		{},
		{"blockHash": c.blocks[1].Hash},
		{"fromBlock": "0x1", "toBlock": "0x1"},
	}
	ids := make([]string, len(crits))
	for i, crit := range crits {
		ids[i] = installFilter(t, s, "eth_newFilter", crit)
		eqJSON(t, "filter logs", result(t, s, "eth_getFilterLogs", ids[i]), result(t, s, "eth_getLogs", crit))
	}
	// The criteria run again on each call, on the chain as it is now.
	b := g.seal([]*types.Log{g.logOf(c.topicA)})
	for i, crit := range crits {
		eqJSON(t, "filter logs after a block", result(t, s, "eth_getFilterLogs", ids[i]), result(t, s, "eth_getLogs", crit))
	}
	eqJSON(t, "latest only", result(t, s, "eth_getFilterLogs", ids[2]), mustJSON(t, blockLogs(b)))
	// eth_getFilterLogs does not consume changes.
	eqJSON(t, "changes still there", result(t, s, "eth_getFilterChanges", ids[2]), mustJSON(t, blockLogs(b)))

	// A block hash the chain does not know (yet) installs, and eth_getFilterLogs
	// answers as eth_getLogs does.
	unknown := installFilter(t, s, "eth_newFilter", map[string]any{"blockHash": common.Hash{7}})
	wantFilterError(t, s, CodeDefault, "unknown block", "eth_getFilterLogs", unknown)

	// The range limits apply as to eth_getLogs.
	limited := newTestServer(t, g, Config{MaxLogsRange: 2, MaxLogs: 1})
	wide := installFilter(t, limited, "eth_newFilter", map[string]any{"fromBlock": "0x0"})
	wantFilterError(t, limited, CodeLimitExceeded, "query exceeds max block range 2", "eth_getFilterLogs", wide)
	many := installFilter(t, limited, "eth_newFilter", map[string]any{"blockHash": c.blocks[2].Hash})
	wantFilterError(t, limited, CodeLimitExceeded, "query exceeds max results 1", "eth_getFilterLogs", many)

	wantNotFound(t, s, "eth_getFilterLogs", "0x1")
}

func TestFilterExpiry(t *testing.T) {
	g := newGrowBackend(t)

	// Real time, short timeout.
	s := newTestServer(t, g, Config{FilterTimeout: 20 * time.Millisecond})
	blocks := installFilter(t, s, "eth_newBlockFilter")
	logs := installFilter(t, s, "eth_newFilter", map[string]any{})
	time.Sleep(60 * time.Millisecond)
	wantNotFound(t, s, "eth_getFilterChanges", blocks)
	wantNotFound(t, s, "eth_getFilterLogs", logs)
	if got := result(t, s, "eth_uninstallFilter", logs); string(got) != "false" {
		t.Errorf("uninstall of an expired filter: %s", got)
	}

	// Fake clock: each eth_getFilterChanges moves the deadline; eth_getFilterLogs
	// does not (as go-ethereum).
	s = newTestServer(t, g, Config{FilterTimeout: time.Minute})
	clock := useFakeClock(s)
	blocks = installFilter(t, s, "eth_newBlockFilter")
	logs = installFilter(t, s, "eth_newFilter", map[string]any{})
	for range 5 {
		clock.advance(50 * time.Second)
		result(t, s, "eth_getFilterChanges", blocks)
		result(t, s, "eth_getFilterChanges", logs)
	}
	clock.advance(59 * time.Second)
	result(t, s, "eth_getFilterLogs", logs)
	clock.advance(time.Second)
	wantNotFound(t, s, "eth_getFilterLogs", logs)
	wantNotFound(t, s, "eth_getFilterChanges", logs)
	wantNotFound(t, s, "eth_getFilterChanges", blocks)

	// Installing sweeps expired filters out of the table.
	for range 10 {
		installFilter(t, s, "eth_newBlockFilter")
	}
	if n := s.filters().count(); n != 10 {
		t.Fatalf("%d filters installed, want 10", n)
	}
	clock.advance(2 * time.Minute)
	installFilter(t, s, "eth_newBlockFilter")
	if n := s.filters().count(); n != 1 {
		t.Errorf("%d filters after the sweep, want 1", n)
	}
}

func TestFilterMaxFilters(t *testing.T) {
	g := newGrowBackend(t)
	s := newTestServer(t, g, Config{MaxFilters: 3, FilterTimeout: time.Minute})
	clock := useFakeClock(s)
	a := installFilter(t, s, "eth_newBlockFilter")
	installFilter(t, s, "eth_newFilter", map[string]any{})
	installFilter(t, s, "eth_newBlockFilter")
	wantFilterError(t, s, CodeLimitExceeded, "too many filters installed (max 3)", "eth_newBlockFilter")
	wantFilterError(t, s, CodeLimitExceeded, "too many filters installed (max 3)", "eth_newFilter", map[string]any{})

	result(t, s, "eth_uninstallFilter", a)
	installFilter(t, s, "eth_newBlockFilter")
	wantFilterError(t, s, CodeLimitExceeded, "too many filters installed (max 3)", "eth_newBlockFilter")

	// Expired filters make room.
	clock.advance(time.Minute)
	for range 3 {
		installFilter(t, s, "eth_newBlockFilter")
	}

	// The limit is per server.
	other := newTestServer(t, g, Config{MaxFilters: 3})
	installFilter(t, other, "eth_newBlockFilter")
}

func TestFilterParams(t *testing.T) {
	g := newGrowBackend(t)
	s := newTestServer(t, g, Config{})
	c := g.c
	id := installFilter(t, s, "eth_newBlockFilter")
	manyAddrs := make([]common.Address, maxFilterAddresses+1)
	for i := range manyAddrs {
		manyAddrs[i] = common.BigToAddress(big.NewInt(int64(i)))
	}
	body := func(method, params string) []byte {
		return []byte(`{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":` + params + `}`)
	}
	tests := []struct {
		method, params string
		code           int
		msg            string // prefix
	}{
		{"eth_getFilterChanges", `[]`, CodeInvalidParams, "missing value for required argument 0"},
		{"eth_getFilterChanges", `null`, CodeInvalidParams, "missing value for required argument 0"},
		{"eth_getFilterChanges", `[null]`, CodeDefault, "filter not found"}, // an empty rpc.ID, as go-ethereum
		{"eth_getFilterChanges", `[1]`, CodeInvalidParams, "invalid argument 0: json: cannot unmarshal number into Go value of type rpc.ID"},
		{"eth_getFilterChanges", `[1e400]`, CodeInvalidParams, "invalid argument 0: json: cannot unmarshal number into Go value of type rpc.ID"},
		{"eth_getFilterChanges", `[{"id":"` + id + `"}]`, CodeInvalidParams, "invalid argument 0: json: cannot unmarshal object into Go value of type rpc.ID"},
		{"eth_getFilterChanges", `[["` + id + `"]]`, CodeInvalidParams, "invalid argument 0: json: cannot unmarshal array into Go value of type rpc.ID"},
		{"eth_getFilterChanges", `["` + id + `",1]`, CodeInvalidParams, "too many arguments, want at most 1"},
		{"eth_getFilterChanges", `{"id":"` + id + `"}`, CodeInvalidParams, "non-array args"},
		{"eth_getFilterChanges", `["0xzz"]`, CodeDefault, "filter not found"},
		{"eth_getFilterChanges", `[""]`, CodeDefault, "filter not found"},
		{"eth_getFilterChanges", `["0x0"]`, CodeDefault, "filter not found"},
		{"eth_getFilterChanges", `["` + strings.ToUpper(id) + `"]`, CodeDefault, "filter not found"},
		{"eth_getFilterChanges", `["` + id + `0"]`, CodeDefault, "filter not found"},
		{"eth_getFilterChanges", `["0x` + strings.Repeat("f", 10000) + `"]`, CodeDefault, "filter not found"},
		{"eth_getFilterChanges", `["\ud800` + id + `"]`, CodeDefault, "filter not found"},
		{"eth_getFilterLogs", `[true]`, CodeInvalidParams, "invalid argument 0: json: cannot unmarshal bool into Go value of type rpc.ID"},
		{"eth_getFilterLogs", `["0x1", "0x2"]`, CodeInvalidParams, "too many arguments, want at most 1"},
		{"eth_uninstallFilter", `[]`, CodeInvalidParams, "missing value for required argument 0"},
		{"eth_uninstallFilter", `[12]`, CodeInvalidParams, "invalid argument 0: json: cannot unmarshal number into Go value of type rpc.ID"},
		{"eth_newBlockFilter", `[1]`, CodeInvalidParams, "too many arguments, want at most 0"},
		{"eth_newFilter", `[]`, CodeInvalidParams, "missing value for required argument 0"},
		{"eth_newFilter", `[{}, {}]`, CodeInvalidParams, "too many arguments, want at most 1"},
		{"eth_newFilter", `["latest"]`, CodeInvalidParams, "invalid argument 0: json: cannot unmarshal string into Go value of type filters.input"},
		{"eth_newFilter", `[{"fromBlock":"0x10000000000000000"}]`, CodeInvalidParams, "invalid argument 0: hex number > 64 bits"},
		{"eth_newFilter", `[{"toBlock":"0x8000000000000000"}]`, CodeInvalidParams, "invalid argument 0: block number larger than int64"},
		{"eth_newFilter", `[{"fromBlock":123}]`, CodeInvalidParams, "invalid argument 0"},
		{"eth_newFilter", `[{"fromBlock":"0x01"}]`, CodeInvalidParams, "invalid argument 0"},
		{"eth_newFilter", `[{"fromBlock":"pending"}]`, CodeInvalidParams, "pending logs are not supported"},
		{"eth_newFilter", `[{"toBlock":"pending"}]`, CodeInvalidParams, "pending logs are not supported"},
		{"eth_newFilter", `[{"fromBlock":"0x5","toBlock":"0x2"}]`, CodeInvalidParams, "invalid block range params"},
		{"eth_newFilter", `[{"fromBlock":"latest","toBlock":"0x2"}]`, CodeInvalidParams, "invalid block range params"},
		{"eth_newFilter", `[{"fromBlock":"safe"}]`, CodeInvalidParams, "invalid block range params"},
		{"eth_newFilter", `[{"toBlock":"finalized"}]`, CodeInvalidParams, "invalid block range params"},
		{"eth_newFilter", `[{"fromBlock":"0x0","toBlock":"earliest"}]`, CodeInvalidParams, "invalid block range params"},
		{"eth_newFilter", `[{"blockHash":"` + c.blocks[1].Hash.Hex() + `","toBlock":"0x1"}]`, CodeInvalidParams, "invalid argument 0: cannot specify both BlockHash and FromBlock/ToBlock"},
		{"eth_newFilter", `[{"blockHash":"0x12"}]`, CodeInvalidParams, "invalid argument 0"},
		{"eth_newFilter", `[{"topics":[null,null,null,null,null]}]`, CodeInvalidParams, "invalid argument 0: exceed max topics"},
		{"eth_newFilter", `[{"topics":[["0x12"]]}]`, CodeInvalidParams, "invalid argument 0"},
		{"eth_newFilter", `[{"address":7}]`, CodeInvalidParams, "invalid argument 0: invalid addresses in query"},
		{"eth_newFilter", `[{"address":` + string(mustJSON(t, manyAddrs)) + `}]`, CodeDefault, "exceed max addresses or topics per search position"},
	}
	for _, tt := range tests {
		e := callErr(t, s, body(tt.method, tt.params))
		if e.Code != tt.code || !strings.HasPrefix(e.Message, tt.msg) {
			name := tt.params
			if len(name) > 80 {
				name = name[:80] + "…"
			}
			t.Errorf("%s %s: got %d %q, want %d %q…", tt.method, name, e.Code, e.Message, tt.code, tt.msg)
		}
	}
	if n := s.filters().count(); n != 1 {
		t.Errorf("%d filters installed by bad requests", n-1)
	}

	// Accepted criteria.
	for _, crit := range []string{`{}`, `{"fromBlock":"earliest"}`, `{"fromBlock":"0x1","toBlock":"0x1"}`, `{"fromBlock":"0x7fffffffffffffff"}`,
		`{"fromBlock":null,"toBlock":null,"address":null,"topics":null}`, `{"blockHash":"` + common.Hash{9}.Hex() + `"}`,
		`{"address":` + string(mustJSON(t, manyAddrs[:maxFilterAddresses])) + `}`} {
		r := do(t, s, body("eth_newFilter", `[`+crit+`]`))
		if r.Error != nil {
			t.Errorf("eth_newFilter %s: %d %q", crit, r.Error.Code, r.Error.Message)
		}
	}
	// No parameters at all for eth_newBlockFilter.
	for _, params := range []string{`[]`, `null`} {
		if r := do(t, s, body("eth_newBlockFilter", params)); r.Error != nil {
			t.Errorf("eth_newBlockFilter %s: %q", params, r.Error.Message)
		}
	}
	// eth_uninstallFilter of an unknown id is false, not an error.
	for _, bad := range []string{"0xzz", "", "0x1", strings.ToUpper(id)} {
		if got := result(t, s, "eth_uninstallFilter", bad); string(got) != "false" {
			t.Errorf("uninstall %q: %s", bad, got)
		}
	}
	// The escaped spelling of an id names the same filter (the id is a JSON string).
	esc := `"\u0030x` + id[2:] + `"`
	if r := do(t, s, body("eth_getFilterChanges", `[`+esc+`]`)); r.Error != nil {
		t.Errorf("escaped id: %q", r.Error.Message)
	}

	// Ids are random and distinct.
	seen := map[string]bool{}
	for range 200 {
		id := newSubID()
		if !filterIDPattern.MatchString(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}

func TestFilterRangeLimits(t *testing.T) {
	g := newGrowBackend(t)
	s := newTestServer(t, g, Config{MaxLogsRange: 2, MaxLogs: 2})
	c := g.c

	// A block filter hands out at most MaxLogsRange hashes per poll.
	blocks := installFilter(t, s, "eth_newBlockFilter")
	logs := installFilter(t, s, "eth_newFilter", map[string]any{})
	later := installFilter(t, s, "eth_newFilter", map[string]any{"fromBlock": hexutil.Uint64(g.HeadNumber() + 4)})
	bs := g.sealN(5)
	eqJSON(t, "poll 1", result(t, s, "eth_getFilterChanges", blocks), mustJSON(t, hashesOf(bs[0:2]...)))
	eqJSON(t, "poll 2", result(t, s, "eth_getFilterChanges", blocks), mustJSON(t, hashesOf(bs[2:4]...)))
	eqJSON(t, "poll 3", result(t, s, "eth_getFilterChanges", blocks), mustJSON(t, hashesOf(bs[4])))
	eqJSON(t, "poll 4", result(t, s, "eth_getFilterChanges", blocks), []byte(`[]`))

	// A log filter more than MaxLogsRange blocks behind answers eth_getLogs' error,
	// names the skipped blocks, and goes on from the head.
	first := bs[0].Header.Number.Uint64()
	e := wantFilterError(t, s, CodeLimitExceeded, "query exceeds max block range 2", "eth_getFilterChanges", logs)
	want := `{"fromBlock":"` + hexutil.EncodeUint64(first) + `","toBlock":"` + hexutil.EncodeUint64(first+4) + `"}`
	if string(e.Data) != want {
		t.Errorf("skipped range: %s, want %s", e.Data, want)
	}
	eqJSON(t, "after the skip", result(t, s, "eth_getFilterChanges", logs), []byte(`[]`))
	// Only the blocks within the criteria count: later spans blocks first+3..first+4.
	eqJSON(t, "within the criteria", result(t, s, "eth_getFilterChanges", later), mustJSON(t, blockLogs(bs[3:]...)))

	// At the result limit the logs come; over it, eth_getLogs' error and a skip.
	two := g.seal([]*types.Log{g.logOf(c.topicA), g.logOf(c.topicB)})
	eqJSON(t, "two logs", result(t, s, "eth_getFilterChanges", logs), mustJSON(t, blockLogs(two)))
	three := g.seal([]*types.Log{g.logOf(c.topicA), g.logOf(c.topicB)}, []*types.Log{g.logOf(c.topicA)})
	n := three.Header.Number.Uint64()
	e = wantFilterError(t, s, CodeLimitExceeded, "query exceeds max results 2", "eth_getFilterChanges", logs)
	want = `{"fromBlock":"` + hexutil.EncodeUint64(n) + `","toBlock":"` + hexutil.EncodeUint64(n) + `"}`
	if string(e.Data) != want {
		t.Errorf("skipped range: %s, want %s", e.Data, want)
	}
	eqJSON(t, "after the skip", result(t, s, "eth_getFilterChanges", logs), []byte(`[]`))
	one := g.seal([]*types.Log{g.logOf(c.topicA)})
	eqJSON(t, "works again", result(t, s, "eth_getFilterChanges", logs), mustJSON(t, blockLogs(one)))
}

// TestFilterBackendError: a failed read consumes nothing.
func TestFilterBackendError(t *testing.T) {
	g := newGrowBackend(t)
	s := newTestServer(t, g, Config{})
	blocks := installFilter(t, s, "eth_newBlockFilter")
	logs := installFilter(t, s, "eth_newFilter", map[string]any{})
	b := g.sealN(2)
	g.failHeaders.Store(true)
	wantFilterError(t, s, CodeDefault, errTest.Error(), "eth_getFilterChanges", blocks)
	wantFilterError(t, s, CodeDefault, errTest.Error(), "eth_getFilterChanges", logs)
	g.failHeaders.Store(false)
	eqJSON(t, "blocks after the error", result(t, s, "eth_getFilterChanges", blocks), mustJSON(t, hashesOf(b...)))
	eqJSON(t, "logs after the error", result(t, s, "eth_getFilterChanges", logs), mustJSON(t, blockLogs(b...)))

	// A cancelled request waiting for a poll in progress gives up.
	fs := s.filters()
	f := fs.get([]byte(blocks), false, time.Minute)
	f.lock <- struct{}{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := s.HandleBody(ctx, reqBody(t, 1, "eth_getFilterChanges", blocks))
	<-f.lock
	if !strings.Contains(string(out), "context canceled") {
		t.Errorf("cancelled poll: %s", out)
	}
}

// TestFilterConcurrentPolls: blocks sealed while several clients poll one block
// filter (paged by a small MaxLogsRange) and one log filter are each reported
// exactly once.
func TestFilterConcurrentPolls(t *testing.T) {
	g := newGrowBackend(t)
	paged := newTestServer(t, g, Config{MaxLogsRange: 3})
	s := newTestServer(t, g, Config{})
	blocks := installFilter(t, paged, "eth_newBlockFilter")
	logs := installFilter(t, s, "eth_newFilter", map[string]any{"topics": []any{g.c.topicA}})

	const pollers, nblocks = 4, 40
	var (
		mu        sync.Mutex
		gotHashes []common.Hash
		gotLogs   []uint64 // block numbers
		done      atomic.Bool
		wg        sync.WaitGroup
	)
	poll := func() {
		for _, srv := range []*Server{paged, s} {
			id := logs
			if srv == paged {
				id = blocks
			}
			// A batch: two polls of the same filter run concurrently in it.
			body := `[` + string(reqBody(t, 1, "eth_getFilterChanges", id)) + `,` + string(reqBody(t, 2, "eth_getFilterChanges", id)) + `]`
			var rs []response
			if err := json.Unmarshal(srv.HandleBody(context.Background(), []byte(body)), &rs); err != nil {
				t.Error(err)
				return
			}
			for _, r := range rs {
				if r.Error != nil {
					t.Errorf("poll: %q", r.Error.Message)
					continue
				}
				mu.Lock()
				if id == blocks {
					var hs []common.Hash
					json.Unmarshal(r.Result, &hs)
					gotHashes = append(gotHashes, hs...)
				} else {
					var ls []types.Log
					json.Unmarshal(r.Result, &ls)
					for _, l := range ls {
						gotLogs = append(gotLogs, l.BlockNumber)
					}
				}
				mu.Unlock()
			}
		}
	}
	for range pollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				poll()
			}
		}()
	}
	var sealed []*Block
	for range nblocks {
		sealed = append(sealed, g.sealN(1)...)
		time.Sleep(100 * time.Microsecond)
	}
	done.Store(true)
	wg.Wait()
	for range nblocks {
		poll() // drain
	}
	seen := map[common.Hash]int{}
	for _, h := range gotHashes {
		seen[h]++
	}
	for _, b := range sealed {
		if seen[b.Hash] != 1 {
			t.Errorf("block %d reported %d times", b.Header.Number, seen[b.Hash])
		}
	}
	if len(gotHashes) != nblocks {
		t.Errorf("%d hashes for %d blocks", len(gotHashes), nblocks)
	}
	count := map[uint64]int{}
	for _, n := range gotLogs {
		count[n]++
	}
	for _, b := range sealed {
		if count[b.Header.Number.Uint64()] != 1 {
			t.Errorf("logs of block %d reported %d times", b.Header.Number, count[b.Header.Number.Uint64()])
		}
	}
	if len(gotLogs) != nblocks {
		t.Errorf("%d logs for %d blocks", len(gotLogs), nblocks)
	}
}

// FuzzFilterParams feeds arbitrary parameters to the filter methods while blocks
// are sealed: no handler may panic (the server would answer CodeInternal), every
// answer is valid JSON-RPC, and the filter table stays within MaxFilters.
func FuzzFilterParams(f *testing.F) {
	g := newGrowBackend(f)
	s := newTestServer(f, g, Config{MaxFilters: 50, MaxLogsRange: 3, MaxLogs: 2})
	id := installFilter(f, s, "eth_newFilter", map[string]any{})
	bid := installFilter(f, s, "eth_newBlockFilter")
	names := []string{"eth_newFilter", "eth_newBlockFilter", "eth_getFilterChanges", "eth_getFilterLogs", "eth_uninstallFilter"}
	seeds := []string{
		`[]`, `null`, `[null]`, `["` + id + `"]`, `["` + bid + `"]`, `["` + id + `",1]`, `[1]`, `[{}]`, `["0x"]`,
		`[{"fromBlock":"0x1","toBlock":"latest","address":"` + g.c.contract.Hex() + `","topics":[["` + g.c.topicA.Hex() + `"],null]}]`,
		`[{"fromBlock":"earliest","toBlock":"0xffffffffffffffff"}]`, `[{"blockHash":"` + g.c.blocks[2].Hash.Hex() + `"}]`,
	}
	for i := range names {
		for _, p := range seeds {
			f.Add(uint8(i), uint8(0), []byte(p))
		}
	}
	f.Fuzz(func(t *testing.T, method, seal uint8, params []byte) {
		if seal%8 == 1 && g.HeadNumber() < 1000 {
			g.sealT(t, []*types.Log{g.logOf(g.c.topicA)}, []*types.Log{g.logOf(g.c.topicB)})
		}
		body := append([]byte(`{"jsonrpc":"2.0","id":1,"method":"`+names[int(method)%len(names)]+`","params":`), params...)
		body = append(body, '}')
		out := s.HandleBody(context.Background(), body)
		checkResponseBody(t, body, out)
		if strings.Contains(string(out), `"code":-32603`) {
			t.Fatalf("internal error answering %q: %s", body, out)
		}
		if n := s.filters().count(); n > 50 {
			t.Fatalf("%d filters installed, max 50", n)
		}
	})
}
