package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/kestrel-l2/kestrel/core/chain"
)

var (
	verboseNodes = flag.Bool("conformance.nodelogs", false, "with -v, print both nodes' logs")
	blocksFlag   = flag.Int("conformance.blocks", 0, "blocks to build (default: 40 with -short, 300 without)")
	dumpFlag     = flag.String("conformance.dump", "", "write every compared request with both answers and its differences to this JSON-lines file")
)

// TestConformance builds a chain of mixed transactions on Kestrel, imports the
// same blocks into go-ethereum and compares both nodes' answers to a battery
// of JSON-RPC requests (battery_test.go) field by field. Differences fail the
// test unless allowed (allowed in allow_test.go, each with its reason) or
// listed as known Kestrel bugs (knownBugs, which must shrink to nothing: an
// entry that no longer matches anything fails the test too).
//
// go-ethereum receives Kestrel's blocks themselves, with the workload's own
// signed bytes of their transactions, in the same grouping and order, through
// the engine API. It executes them and refuses a block unless the state root,
// receipts root, logs bloom, gas used, base fee and hash it computes are
// Kestrel's. The free inputs of a header (timestamp, prevrandao, fee
// recipient, extra data, beacon root) are therefore Kestrel's too, so the two
// chains are one chain, hash for hash: block hashes, parent hashes and
// everything that contains them are compared as they are, with no mapping
// between two sets of hashes and nothing ignored.
//
// -short builds about 40 blocks on the dev chain (seconds); without it about
// 300, then 100 more on a second genesis (Osaka, a fee recipient, extra data,
// another gas limit), about a minute and a half on two cores. -conformance.blocks overrides the count,
// -conformance.dump writes every request, both answers and their differences
// to a JSON-lines file, -conformance.nodelogs (with -v) prints both nodes' logs.
func TestConformance(t *testing.T) {
	blocks := 300
	if testing.Short() {
		blocks = 40
	}
	if *blocksFlag > 0 {
		blocks = *blocksFlag
	}
	if *dumpFlag != "" {
		_ = os.Remove(*dumpFlag) // each run appends to it
	}
	seen := &bugsSeen{seen: make(map[int]bool)}
	defer seen.check(t)
	t.Run("dev-prague", func(t *testing.T) { runConformance(t, "", blocks, seen) })
	if testing.Short() {
		return
	}
	// A second chain on other rules: Osaka, a fee recipient that collects the
	// tips, a genesis extraData and a smaller gas limit.
	g := chain.DevGenesis()
	g.Fork = chain.ForkOsaka
	g.Coinbase = common.HexToAddress("0x00000000000000000000000000000000c0ffee01")
	g.ExtraData = []byte("kestrel conformance")
	g.GasLimit = 60_000_000
	path := filepath.Join(t.TempDir(), "genesis.json")
	data, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("osaka-coinbase", func(t *testing.T) { runConformance(t, path, max(blocks/3, 40), seen) })
}

// runConformance is one conformance run on the genesis in genesisFile (""
// for the built-in dev chain).
func runConformance(t *testing.T, genesisFile string, blocks int, seen *bugsSeen) {
	dir := t.TempDir()
	start := time.Now()

	// Phase 1: a fast chain (ten blocks a second; block timestamps are whole
	// seconds and run ahead of the clock, which neither node minds).
	seq := startKestrel(t, dir, genesisFile, 100*time.Millisecond)
	first := seq
	t.Cleanup(func() { _ = first.Stop(context.Background()) }) // after a failure; Stop is idempotent
	kc := newRPCClient("kestrel", "http://"+seq.RPCAddr())
	w := newWorkload(1)
	buildChain(t, kc, w, uint64(blocks))
	if err := seq.Stop(context.Background()); err != nil {
		t.Fatalf("stop sequencer: %v", err)
	}
	t.Logf("built %d blocks with %d transactions in %v: %v", blocks, len(w.raw), time.Since(start).Round(time.Millisecond), kindSummary(w.kinds))

	// Phase 2: the same data directory, reopened with an hour-long block
	// interval, so that the head stays put while both nodes are questioned
	// (this also exercises recovery: everything is served after a restart).
	seq = startKestrel(t, dir, genesisFile, time.Hour)
	t.Cleanup(func() {
		if err := seq.Stop(context.Background()); err != nil {
			t.Errorf("stop sequencer: %v", err)
		}
	})
	kc = newRPCClient("kestrel", "http://"+seq.RPCAddr())
	g := chain.DevGenesis()
	if genesisFile != "" {
		var err error
		if g, err = chain.LoadGenesis(genesisFile); err != nil {
			t.Fatal(err)
		}
	}
	geth := startGeth(t, g, testing.Verbose() && *verboseNodes)
	gc := newRPCClient("geth", geth.url)

	facts := importChain(t, kc, geth, gc, w)
	facts.osaka = seq.Genesis().Fork == chain.ForkOsaka
	t.Logf("go-ethereum accepted Kestrel's blocks 1..%d (head %s) after %v", facts.head, facts.blocks[facts.head].hash, time.Since(start).Round(time.Millisecond))

	reqs := battery(facts, testing.Short())
	cmp := newComparer(t, kc, gc)
	cmp.run(reqs)
	cmp.runFilters(facts)
	cmp.run(sendBattery(facts, w)) // last: a transaction a node accepts changes its pending state
	cmp.report()
	seen.add(cmp)
	t.Logf("compared %d requests in %v (total %v)", cmp.compared, cmp.elapsed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

func kindSummary(kinds map[string]int) string {
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	var sb strings.Builder
	for i, k := range names {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%s %d", k, kinds[k])
	}
	return sb.String()
}

// buildChain sends the workload to Kestrel step by step, waiting for each
// step's receipts (and now and then for a few empty blocks), until the chain
// has the wanted number of blocks.
func buildChain(t *testing.T, kc *rpcClient, w *workload, blocks uint64) {
	t.Helper()
	send := func(txs []*types.Transaction) {
		for _, tx := range txs {
			var h common.Hash
			if err := kc.call(&h, "eth_sendRawTransaction", hexutil.Bytes(w.raw[tx.Hash()])); err != nil {
				t.Fatalf("Kestrel refused a workload transaction (type %d, nonce %d, to %v): %v", tx.Type(), tx.Nonce(), tx.To(), err)
			}
		}
		waitReceipts(t, kc, txs)
	}
	nonceOf := func(a common.Address) uint64 {
		var n hexutil.Uint64
		if err := kc.call(&n, "eth_getTransactionCount", a, "latest"); err != nil {
			t.Fatal(err)
		}
		return uint64(n)
	}
	send(w.setup())
	for {
		var head hexutil.Uint64
		if err := kc.call(&head, "eth_blockNumber"); err != nil {
			t.Fatal(err)
		}
		if uint64(head) >= blocks {
			return
		}
		send(w.step(nonceOf))
		if w.rng.IntN(5) == 0 { // let a few empty blocks pass
			time.Sleep(time.Duration(1+w.rng.IntN(3)) * 100 * time.Millisecond)
		}
	}
}

func waitReceipts(t *testing.T, kc *rpcClient, txs []*types.Transaction) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, tx := range txs {
		for {
			var r map[string]any
			if err := kc.call(&r, "eth_getTransactionReceipt", tx.Hash()); err != nil {
				t.Fatal(err)
			}
			if r != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no receipt for %s", tx.Hash())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// chainFacts is what the battery needs to know about the built chain.
type chainFacts struct {
	head     uint64
	gasLimit uint64       // of the head block
	osaka    bool         // the chain runs Osaka's rules
	blocks   []blockFacts // by number, 0..head
	txs      []txFacts    // every transaction, in chain order
	w        *workload
}

type blockFacts struct {
	hash   common.Hash
	time   uint64
	txs    []common.Hash
	logged bool // some receipt has logs
}

type txFacts struct {
	hash  common.Hash
	block uint64
	index int
	typ   uint8
	kind  string // the workload's name for it
}

// importChain reads every Kestrel block, checks that its JSON header hashes to
// its "hash", and imports it into go-ethereum with the workload's own signed
// bytes of its transactions.
func importChain(t *testing.T, kc *rpcClient, geth *gethNode, gc *rpcClient, w *workload) *chainFacts {
	t.Helper()
	var head hexutil.Uint64
	if err := kc.call(&head, "eth_blockNumber"); err != nil {
		t.Fatal(err)
	}
	f := &chainFacts{head: uint64(head), blocks: make([]blockFacts, head+1), w: w}
	ctx := context.Background()
	for n := uint64(0); n <= f.head; n++ {
		var raw json.RawMessage
		if err := kc.call(&raw, "eth_getBlockByNumber", hexutil.Uint64(n), false); err != nil {
			t.Fatal(err)
		}
		var header types.Header
		if err := json.Unmarshal(raw, &header); err != nil {
			t.Fatalf("Kestrel block %d: header does not decode: %v", n, err)
		}
		var body struct {
			Hash         common.Hash   `json:"hash"`
			Transactions []common.Hash `json:"transactions"`
		}
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("Kestrel block %d: %v", n, err)
		}
		if header.Hash() != body.Hash {
			t.Fatalf("Kestrel block %d: the JSON header hashes to %s, not to its \"hash\" %s", n, header.Hash(), body.Hash)
		}
		f.blocks[n] = blockFacts{hash: body.Hash, time: header.Time, txs: body.Transactions}
		f.gasLimit = header.GasLimit
		if n == 0 {
			var g struct {
				Hash common.Hash `json:"hash"`
			}
			if err := gc.call(&g, "eth_getBlockByNumber", "0x0", false); err != nil {
				t.Fatal(err)
			}
			if g.Hash != body.Hash {
				t.Fatalf("genesis differs: Kestrel %s, go-ethereum %s (chain config, allocation or genesis header fields differ)", body.Hash, g.Hash)
			}
			continue
		}
		txs := make([]*types.Transaction, len(body.Transactions))
		for i, h := range body.Transactions {
			rawTx, ok := w.raw[h]
			if !ok {
				t.Fatalf("Kestrel block %d holds transaction %s that the test never sent", n, h)
			}
			txs[i] = new(types.Transaction)
			if err := txs[i].UnmarshalBinary(rawTx); err != nil {
				t.Fatal(err)
			}
		}
		if err := geth.importBlock(ctx, &header, txs); err != nil {
			t.Fatal(err)
		}
	}
	// Facts about each transaction, from go-ethereum's receipts (equal to
	// Kestrel's: the receipts root matched).
	for n := uint64(1); n <= f.head; n++ {
		for i, h := range f.blocks[n].txs {
			var r struct {
				Type hexutil.Uint64 `json:"type"`
				Logs []any          `json:"logs"`
			}
			if err := gc.call(&r, "eth_getTransactionReceipt", h); err != nil {
				t.Fatal(err)
			}
			if len(r.Logs) > 0 {
				f.blocks[n].logged = true
			}
			f.txs = append(f.txs, txFacts{hash: h, block: n, index: i, typ: uint8(r.Type), kind: w.kindOf[h]})
		}
	}
	return f
}

// comparer sends requests to both nodes and sorts the differences into
// allowed, known bugs and failures.
type comparer struct {
	t        *testing.T
	k, g     *rpcClient
	compared int
	elapsed  time.Duration

	mu         sync.Mutex
	absent     map[string]bool // optional methods Kestrel does not have
	unexpected map[string]*diffGroup
	known      map[int]*diffGroup
	allowedN   map[int]int
	dump       *os.File
}

// diffGroup gathers the differences of one (method, normalised path) or one
// known bug, with the first example.
type diffGroup struct {
	count   int
	example string
}

func newComparer(t *testing.T, k, g *rpcClient) *comparer {
	c := &comparer{t: t, k: k, g: g, absent: make(map[string]bool), unexpected: make(map[string]*diffGroup),
		known: make(map[int]*diffGroup), allowedN: make(map[int]int)}
	if *dumpFlag != "" {
		f, err := os.OpenFile(*dumpFlag, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		c.dump = f
		t.Cleanup(func() { f.Close() })
	}
	return c
}

// run compares the answers to reqs, four requests at a time.
func (c *comparer) run(reqs []request) {
	start := time.Now()
	defer func() { c.elapsed += time.Since(start) }()
	work := make(chan *request)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				c.one(r)
			}
		}()
	}
	for i := range reqs {
		work <- &reqs[i]
	}
	close(work)
	wg.Wait()
}

// one sends r to both nodes and records the differences of the answers.
func (c *comparer) one(r *request) {
	body := r.body()
	c.pair(r, body, body)
}

// pair sends kb to Kestrel and gb to go-ethereum (the same request but for
// node-chosen values such as filter ids) and compares the answers.
func (c *comparer) pair(r *request, kb, gb []byte) (ka, ga []byte) {
	var kerr, gerr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ka, kerr = c.k.post(kb) }()
	go func() { defer wg.Done(); ga, gerr = c.g.post(gb) }()
	wg.Wait()
	if kerr != nil || gerr != nil {
		c.t.Errorf("%s: transport error: kestrel %v, geth %v", r.label(), kerr, gerr)
		return nil, nil
	}
	c.compare(r, kb, ka, ga)
	return ka, ga
}

func (c *comparer) compare(r *request, body, ka, ga []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.compared++
	if r.optional && c.absent[r.method] {
		return
	}
	if r.optional && isMethodNotFound(ka) && !isMethodNotFound(ga) {
		c.absent[r.method] = true
		c.t.Logf("SKIPPED: Kestrel does not serve %s yet (answer %s); its requests are not compared", r.method, ka)
		return
	}
	diffs, err := compareAnswers(ka, ga)
	if err != nil {
		c.t.Errorf("%s: %v\nrequest: %s\nkestrel: %s\ngeth:    %s", r.label(), err, body, ka, ga)
		return
	}
	if c.dump != nil {
		line, err := json.Marshal(map[string]any{"run": c.t.Name(), "label": r.label(), "request": jsonOrString(body),
			"kestrel": jsonOrString(ka), "geth": jsonOrString(ga), "diffs": fmt.Sprint(diffs)})
		if err == nil {
			_, err = c.dump.Write(append(line, '\n'))
		}
		if err != nil {
			c.t.Errorf("dump: %v", err)
		}
	}
	for _, d := range diffs {
		if i := matchRule(allowed, r, d); i >= 0 {
			if chk := allowed[i].check; chk != nil {
				if err := chk(d.A, d.B); err != nil {
					c.addUnexpected(r, d, body, ka, ga, "allowed difference fails its check: "+err.Error())
					continue
				}
			}
			c.allowedN[i]++
			continue
		}
		if i := matchRule(knownBugs, r, d); i >= 0 {
			if chk := knownBugs[i].check; chk != nil {
				if err := chk(d.A, d.B); err != nil {
					c.addUnexpected(r, d, body, ka, ga, "not the known bug: "+err.Error())
					continue
				}
			}
			g := c.known[i]
			if g == nil {
				g = &diffGroup{example: example(r, d, body, ka, ga, "")}
				c.known[i] = g
			}
			g.count++
			continue
		}
		c.addUnexpected(r, d, body, ka, ga, "")
	}
}

func (c *comparer) addUnexpected(r *request, d Difference, body, ka, ga []byte, note string) {
	key := r.method + " " + orRoot(d.Pattern())
	g := c.unexpected[key]
	if g == nil {
		g = &diffGroup{example: example(r, d, body, ka, ga, note)}
		c.unexpected[key] = g
	}
	g.count++
}

func example(r *request, d Difference, body, ka, ga []byte, note string) string {
	s := fmt.Sprintf("%s\n  difference: %s\n  request: %s\n  kestrel: %s\n  geth:    %s", r.label(), d, body, clip(ka), clip(ga))
	if note != "" {
		s += "\n  " + note
	}
	return s
}

func clip(b []byte) string {
	const max = 300
	if len(b) > max {
		return string(b[:max]) + fmt.Sprintf("…(%d bytes)", len(b))
	}
	return string(b)
}

func jsonOrString(b []byte) any {
	if json.Valid(b) {
		return json.RawMessage(b)
	}
	return string(b)
}

// compareAnswers compares two answer bodies; two empty bodies (the answer to
// a notification) are equal.
func compareAnswers(ka, ga []byte) ([]Difference, error) {
	ke, ge := len(bytes.TrimSpace(ka)) == 0, len(bytes.TrimSpace(ga)) == 0
	switch {
	case ke && ge:
		return nil, nil
	case ke || ge:
		return []Difference{{Path: "(body)", A: string(ka), B: string(ga)}}, nil
	}
	return Compare(ka, ga)
}

func isMethodNotFound(answer []byte) bool {
	var r rpcResponse
	return json.Unmarshal(answer, &r) == nil && r.Error != nil && r.Error.Code == -32601
}

// report fails the test for every unexpected difference and every known bug
// that no longer shows, and logs the rest.
func (c *comparer) report() {
	c.t.Helper()
	for i, rule := range allowed {
		if n := c.allowedN[i]; n > 0 {
			c.t.Logf("allowed %d× %s %s: %s", n, rule.method, rule.path, rule.reason)
		}
	}
	for i, bug := range knownBugs {
		if g := c.known[i]; g != nil {
			c.t.Logf("KNOWN BUG %d× %s %s: %s\n  e.g. %s", g.count, bug.method, bug.path, bug.reason, g.example)
		}
	}
	keys := make([]string, 0, len(c.unexpected))
	for k := range c.unexpected {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g := c.unexpected[k]
		c.t.Errorf("DIFFERENCE %d× %s\n  e.g. %s", g.count, k, g.example)
	}
	if len(c.absent) > 0 {
		var names []string
		for m := range c.absent {
			names = append(names, m)
		}
		sort.Strings(names)
		c.t.Logf("not compared (Kestrel lacks them): %s", strings.Join(names, ", "))
	}
}

// bugsSeen gathers, over the runs of one TestConformance, which known bugs
// showed (or concern a method Kestrel did not serve, where not seeing them
// says nothing).
type bugsSeen struct {
	runs int
	seen map[int]bool
}

func (b *bugsSeen) add(c *comparer) {
	b.runs++
	for i, bug := range knownBugs {
		if c.known[i] != nil || c.absent[bug.method] {
			b.seen[i] = true
		}
	}
}

// check fails t for every known bug no run showed: it is fixed, and its entry
// must go, so that the list only shrinks.
func (b *bugsSeen) check(t *testing.T) {
	if b.runs == 0 || t.Failed() {
		return
	}
	for i, bug := range knownBugs {
		if !b.seen[i] {
			t.Errorf("known bug no longer seen (fixed? remove it from knownBugs): %s [%s] %s: %s", bug.method, bug.name, bug.path, bug.reason)
		}
	}
}
