package replica

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/valyala/fasthttp"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/state"
	"github.com/kestrel-l2/kestrel/sequencer"
	"github.com/kestrel-l2/kestrel/store"
)

var (
	// ErrBootstrapNotEmpty is returned by Bootstrap for a store that already
	// holds a chain (or a snapshot it did not download itself).
	ErrBootstrapNotEmpty = errors.New("replica: the store is not empty; bootstrap needs an empty data directory")
	// ErrBadManifest is returned for a snapshot manifest that fails a check:
	// a header not signed by the expected sequencer, a broken parent link, a
	// gap, or a genesis that does not match block 0.
	ErrBadManifest = errors.New("replica: bad snapshot manifest")
	// errSnapshotGone is a 404 for a snapshot: the server no longer keeps it.
	errSnapshotGone = errors.New("snapshot no longer served")
)

// BootstrapResult describes a finished bootstrap.
type BootstrapResult struct {
	// SnapshotID, Block and MiniIndex identify the snapshot now in the store:
	// the state after mini-block MiniIndex, the last of block Block.
	SnapshotID, Block, MiniIndex uint64
	// Accounts and Bytes count the snapshot's accounts and chunk bytes,
	// including those downloaded before an interruption.
	Accounts int
	Bytes    int64
	// Elapsed is the time this call took.
	Elapsed time.Duration
	// Resumed is set when the call continued an interrupted bootstrap.
	Resumed bool
}

// bootstrapOptions tune Bootstrap; tests shrink them.
type bootstrapOptions struct {
	chunkBytes int           // asks servers for chunks of at most this many bytes; 0: the server's size
	timeout    time.Duration // one request
	retries    int           // further attempts of a failed request
	backoff    time.Duration // first wait before a retry; doubled each time
	restarts   int           // times to start over when the snapshot rotates out mid-download
	logEvery   time.Duration
}

var defaultBootstrapOptions = bootstrapOptions{timeout: 30 * time.Second, retries: 4, backoff: 500 * time.Millisecond, restarts: 3, logEvery: 5 * time.Second}

// bootstrapProgress is the store's bootstrap progress record (RLP). It names the
// snapshot by block and header hash as well as by id, so that a bootstrap
// resumed against another server continues only the same state; cursors
// depend on the state alone.
type bootstrapProgress struct {
	ID, Block, MiniIndex uint64
	Hash                 common.Hash // the snapshot block's header hash
	Cursor               []byte      // the next chunk; empty once Done
	Done                 bool        // every chunk is written
	Accounts             uint64
	Bytes                uint64
}

// Bootstrap fills an empty store with a snapshot fetched from url (the base URL
// of a node's HTTP JSON-RPC listener, e.g. http://127.0.0.1:8545; the
// sequencer, a full node or a replica): the manifest's signed headers are
// checked against signer, the state is downloaded in chunks, each written with
// the progress in one synced batch, and the store then gets the block records,
// and in one batch, the snapshot's listing and the genesis. A store with an
// unfinished bootstrap resumes it, from its last written chunk, when the
// server still has that snapshot, and starts over with the newest otherwise.
//
// Bootstrap does not rebuild the state trie: a node's recovery does, and
// compares the root with the snapshot block's signed header. That check is the
// verification of the downloaded state.
func Bootstrap(ctx context.Context, url string, st *store.Store, signer common.Address, log *slog.Logger) (*BootstrapResult, error) {
	return bootstrap(ctx, url, st, signer, log, defaultBootstrapOptions)
}

func bootstrap(ctx context.Context, url string, st *store.Store, signer common.Address, log *slog.Logger, o bootstrapOptions) (*BootstrapResult, error) {
	start := time.Now()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, err := st.Genesis(); err == nil {
		return nil, ErrBootstrapNotEmpty
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	prog, err := readProgress(st)
	if err != nil {
		return nil, err
	}
	if metas, err := st.Snapshots(); err != nil {
		return nil, err
	} else if len(metas) > 0 && prog == nil {
		return nil, ErrBootstrapNotEmpty
	}
	c := newSnapClient(url, o)
	defer c.hc.CloseIdleConnections()
	log = log.With("server", c.shown)

	var man *verifiedManifest
	resumed := false
	if prog != nil {
		m, err := c.manifest(ctx, &prog.ID, signer)
		switch {
		case errors.Is(err, errSnapshotGone):
			log.Info("The snapshot of the interrupted bootstrap is no longer served; starting over", "id", prog.ID, "block", prog.Block)
		case err != nil:
			return nil, err
		case m.Block != prog.Block || m.hash != prog.Hash || m.MiniIndex != prog.MiniIndex:
			log.Info("The server's snapshot differs from the interrupted bootstrap's; starting over", "id", prog.ID, "block", prog.Block, "serverBlock", m.Block)
		default:
			man, resumed = m, true
			log.Info("Resuming state snapshot download", "id", prog.ID, "block", prog.Block, "accounts", prog.Accounts, "mb", mb(prog.Bytes))
		}
		if man == nil {
			if err := discard(st, prog.ID); err != nil {
				return nil, err
			}
			prog = nil
		}
	}

	for restarts := 0; ; restarts++ {
		if man == nil {
			if man, err = c.manifest(ctx, nil, signer); err != nil {
				return nil, err
			}
			// Nothing of this id can be in the store (progress is written with
			// every chunk), but a leftover would be listed with the new state.
			if err := st.DeleteSnapshotData(man.ID); err != nil {
				return nil, err
			}
			prog = &bootstrapProgress{ID: man.ID, Block: man.Block, MiniIndex: man.MiniIndex, Hash: man.hash}
			log.Info("Downloading state snapshot", "id", man.ID, "block", man.Block, "miniBlock", man.MiniIndex)
		}
		err := download(ctx, c, st, prog, log, o)
		if err == nil {
			break
		}
		if !errors.Is(err, errSnapshotGone) || restarts >= o.restarts {
			return nil, err
		}
		log.Info("The snapshot rotated out during the download; starting over with the newest", "id", prog.ID, "block", prog.Block)
		if err := discard(st, prog.ID); err != nil {
			return nil, err
		}
		man, prog, resumed = nil, nil, false
	}

	for _, rec := range man.records {
		if err := st.PutBlock(rec); err != nil {
			return nil, fmt.Errorf("write block %d: %w", rec.Header.Number, err)
		}
	}
	if err := st.Sync(); err != nil {
		return nil, err
	}
	meta := store.SnapshotMeta{ID: man.ID, MiniIndex: man.MiniIndex, Block: man.Block}
	if err := st.CompleteBootstrap(meta, man.Genesis); err != nil {
		return nil, err
	}
	res := &BootstrapResult{SnapshotID: man.ID, Block: man.Block, MiniIndex: man.MiniIndex, Accounts: int(prog.Accounts),
		Bytes: int64(prog.Bytes), Elapsed: time.Since(start), Resumed: resumed}
	log.Info("Bootstrapped from state snapshot", "id", res.SnapshotID, "block", res.Block, "miniBlock", res.MiniIndex,
		"accounts", res.Accounts, "mb", mb(prog.Bytes), "resumed", resumed, "elapsed", res.Elapsed.Round(time.Millisecond))
	return res, nil
}

// download fetches the chunks of prog's snapshot from its cursor on, writing
// each with the advanced progress record.
func download(ctx context.Context, c *snapClient, st *store.Store, prog *bootstrapProgress, log *slog.Logger, o bootstrapOptions) error {
	start, lastLog := time.Now(), time.Now()
	startBytes := prog.Bytes
	for !prog.Done {
		if err := ctx.Err(); err != nil {
			return err
		}
		entries, next, size, err := c.chunk(ctx, prog.ID, prog.Cursor)
		if err != nil {
			return err
		}
		if next != nil && bytes.Compare(next, prog.Cursor) <= 0 {
			return fmt.Errorf("snapshot %d chunk at cursor %x: the next cursor %x does not advance", prog.ID, prog.Cursor, next)
		}
		p := *prog
		p.Cursor, p.Done, p.Bytes = next, next == nil, p.Bytes+uint64(size)
		for i := range entries {
			if entries[i].Account {
				p.Accounts++
			}
		}
		enc, err := rlp.EncodeToBytes(&p)
		if err != nil {
			return err
		}
		if err := st.PutSnapshotEntries(p.ID, entries, enc); err != nil {
			return fmt.Errorf("snapshot %d chunk at cursor %x: %w", prog.ID, prog.Cursor, err)
		}
		*prog = p
		if time.Since(lastLog) >= o.logEvery {
			lastLog = time.Now()
			secs := time.Since(start).Seconds()
			log.Info("Downloading state snapshot", "id", prog.ID, "accounts", prog.Accounts, "mb", mb(prog.Bytes),
				"mbPerSec", strconv.FormatFloat(float64(prog.Bytes-startBytes)/(1<<20)/secs, 'f', 1, 64))
		}
	}
	return nil
}

// discard deletes what an abandoned bootstrap wrote.
func discard(st *store.Store, id uint64) error {
	if err := st.DeleteSnapshotData(id); err != nil {
		return err
	}
	return st.ClearBootstrapProgress()
}

func readProgress(st *store.Store) (*bootstrapProgress, error) {
	raw, err := st.BootstrapProgress()
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p := new(bootstrapProgress)
	if err := rlp.DecodeBytes(raw, p); err != nil {
		return nil, fmt.Errorf("bootstrap progress record: %w", err)
	}
	if len(p.Cursor) == 0 {
		p.Cursor = nil
	}
	return p, nil
}

func mb(n uint64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) }

// verifiedManifest is a manifest whose headers passed verifyManifest.
type verifiedManifest struct {
	sequencer.SnapshotManifest
	records []*store.BlockRecord
	hash    common.Hash // the snapshot block's header hash
}

// verifyManifest checks a manifest: the headers are the blocks
// max(0, Block-256)..Block, each signed by signer and linked to its parent,
// the last one ends at the snapshot's mini-block, and the genesis parses and,
// when block 0 is among the headers, yields block 0's header.
func verifyManifest(m *sequencer.SnapshotManifest, signer common.Address) (*verifiedManifest, error) {
	bad := func(format string, args ...any) (*verifiedManifest, error) {
		return nil, fmt.Errorf("%w: snapshot %d: %s", ErrBadManifest, m.ID, fmt.Sprintf(format, args...))
	}
	from := uint64(0)
	if m.Block > 256 {
		from = m.Block - 256
	}
	if uint64(len(m.Headers)) != m.Block-from+1 {
		return bad("%d headers for blocks %d..%d", len(m.Headers), from, m.Block)
	}
	v := &verifiedManifest{SnapshotManifest: *m}
	for i, enc := range m.Headers {
		n := from + uint64(i)
		rec := new(store.BlockRecord)
		if err := rlp.DecodeBytes(enc, rec); err != nil || rec.Header == nil || rec.Header.Number == nil {
			return bad("block %d: malformed record: %v", n, err)
		}
		if !rec.Header.Number.IsUint64() || rec.Header.Number.Uint64() != n {
			return bad("header %d has number %s, want %d", i, rec.Header.Number, n)
		}
		got, err := (&chain.SignedHeader{Header: rec.Header, Signature: rec.Signature}).Signer()
		if err != nil || got != signer {
			return bad("block %d is not signed by the sequencer %s (signer %s, %v)", n, signer, got, err)
		}
		if i > 0 && rec.Header.ParentHash != v.records[i-1].Header.Hash() {
			return bad("block %d does not link to block %d", n, n-1)
		}
		v.records = append(v.records, rec)
	}
	last := v.records[len(v.records)-1]
	if last.LastMini != m.MiniIndex {
		return bad("block %d ends at mini-block %d, the snapshot at %d", m.Block, last.LastMini, m.MiniIndex)
	}
	v.hash = last.Header.Hash()
	var g chain.Genesis
	if err := json.Unmarshal(m.Genesis, &g); err != nil {
		return bad("genesis: %v", err)
	}
	if err := g.Check(); err != nil {
		return bad("genesis: %v", err)
	}
	if from == 0 {
		root, err := state.NewMerkle(1).Apply(0, g.AllocDiff())
		if err != nil {
			return bad("genesis root: %v", err)
		}
		if want, got := sequencer.GenesisHeader(&g, root).Hash(), v.records[0].Header.Hash(); want != got {
			return bad("block 0 %s is not the genesis block %s", got, want)
		}
	}
	return v, nil
}

// snapClient fetches a node's snapshots.
type snapClient struct {
	base  string
	shown string // base without credentials, for logs and errors
	hc    *fasthttp.Client
	o     bootstrapOptions
}

func newSnapClient(url string, o bootstrapOptions) *snapClient {
	base := strings.TrimRight(url, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	shown := base
	if u, err := neturl.Parse(base); err == nil {
		shown = u.Redacted()
	}
	return &snapClient{base: base, shown: shown, o: o, hc: &fasthttp.Client{
		Name:                "kestrel-bootstrap",
		ReadTimeout:         o.timeout,
		WriteTimeout:        o.timeout,
		MaxResponseBodySize: 256 << 20, // a manifest carries the genesis, whose allocation may be large
	}}
}

// httpError is a response other than 200.
type httpError struct {
	status int
	body   string
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

// retriable reports whether a failed request may succeed when repeated.
func retriable(err error) bool {
	var he *httpError
	if errors.As(err, &he) {
		return he.status >= 500 || he.status == fasthttp.StatusTooManyRequests
	}
	var p *permanent
	if errors.As(err, &p) {
		return false
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// fetch GETs path and hands a 200 body to use, repeating on transport errors,
// 5xx answers and errors of use (a corrupt chunk) with growing waits.
func (c *snapClient) fetch(ctx context.Context, path string, use func([]byte) error) error {
	wait := c.o.backoff
	var err error
	for attempt := 0; ; attempt++ {
		if err = ctx.Err(); err != nil {
			return err
		}
		if err = c.get(ctx, path, use); err == nil || !retriable(err) || attempt >= c.o.retries {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
}

func (c *snapClient) get(ctx context.Context, path string, use func([]byte) error) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(c.base + path)
	req.Header.SetMethod(fasthttp.MethodGet)
	deadline := time.Now().Add(c.o.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.hc.DoDeadline(req, resp, deadline); err != nil {
		return err
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		body := resp.Body()
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			body = []byte(e.Error)
		} else if len(body) > 200 {
			body = body[:200]
		}
		return &httpError{status: resp.StatusCode(), body: string(body)}
	}
	return use(resp.Body())
}

// manifest fetches and verifies the manifest of snapshot id, or of the newest
// snapshot when id is nil. A snapshot the server does not keep is
// errSnapshotGone.
func (c *snapClient) manifest(ctx context.Context, id *uint64, signer common.Address) (*verifiedManifest, error) {
	path := sequencer.SnapshotPath
	if id != nil {
		path += "/" + strconv.FormatUint(*id, 10)
	}
	var v *verifiedManifest
	err := c.fetch(ctx, path, func(body []byte) error {
		var m sequencer.SnapshotManifest
		if err := json.Unmarshal(body, &m); err != nil {
			return &permanent{fmt.Errorf("%w: %v", ErrBadManifest, err)}
		}
		var err error
		v, err = verifyManifest(&m, signer)
		if err != nil {
			return &permanent{err}
		}
		return nil
	})
	var he *httpError
	if errors.As(err, &he) && he.status == fasthttp.StatusNotFound && id != nil {
		return nil, fmt.Errorf("%w: snapshot %d: %s", errSnapshotGone, *id, he.body)
	}
	var p *permanent
	if errors.As(err, &p) {
		err = p.err
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot manifest from %s%s: %w", c.shown, path, err)
	}
	return v, nil
}

// permanent marks an error that a retry does not cure.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// chunk fetches and decodes the chunk of snapshot id at cursor. A chunk that
// fails its checksum or does not decode is fetched again a few times (it may
// have been damaged on the way), then reported naming the chunk.
func (c *snapClient) chunk(ctx context.Context, id uint64, cursor []byte) (entries []store.SnapshotEntry, next []byte, size int, err error) {
	path := sequencer.SnapshotPath + "/" + strconv.FormatUint(id, 10) + "/chunk?cursor=" + hex.EncodeToString(cursor)
	if c.o.chunkBytes > 0 {
		path += "&max=" + strconv.Itoa(c.o.chunkBytes)
	}
	err = c.fetch(ctx, path, func(body []byte) error {
		var err error
		entries, next, err = sequencer.UnmarshalSnapshotChunk(body)
		size = len(body)
		return err
	})
	var he *httpError
	if errors.As(err, &he) && he.status == fasthttp.StatusNotFound {
		err = fmt.Errorf("%w: %s", errSnapshotGone, he.body)
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("snapshot %d chunk at cursor %x from %s: %w", id, cursor, c.shown, err)
	}
	return entries, next, size, nil
}
