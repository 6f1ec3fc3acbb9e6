package sequencer

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/holiman/uint256"
	"github.com/valyala/fasthttp"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/store"
)

func snapGet(s *Sequencer, uri string) (int, []byte) {
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI(uri)
	ctx.Request.Header.SetMethod(fasthttp.MethodGet)
	s.serveSnapshot(&ctx)
	return ctx.Response.StatusCode(), append([]byte(nil), ctx.Response.Body()...)
}

func startSnapshotting(t *testing.T) *Sequencer {
	t.Helper()
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.RPC.Addr = "127.0.0.1:0"
	cfg.BlockInterval = 100 * time.Millisecond
	cfg.SnapshotEvery = 1
	s, err := New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s
}

// waitSnapshot waits for a served snapshot of a block past after.
func waitSnapshot(t *testing.T, s *Sequencer, after uint64) *SnapshotManifest {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, body := snapGet(s, SnapshotPath)
		if status != fasthttp.StatusOK {
			t.Fatalf("manifest: %d %s", status, body)
		}
		var m SnapshotManifest
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		if m.Block > after {
			return &m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot past block %d", after)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeSnapshot(t *testing.T) {
	s := startSnapshotting(t)
	m := waitSnapshot(t, s, 1)

	// The manifest: the stored genesis (the dev chain's, whole), and the block
	// records up to the snapshot's.
	genesis, err := json.Marshal(chain.DevGenesis())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Genesis, genesis) {
		t.Fatalf("manifest genesis %s, want %s", m.Genesis, genesis)
	}
	if uint64(len(m.Headers)) != m.Block+1 {
		t.Fatalf("%d headers for block %d", len(m.Headers), m.Block)
	}
	for i, enc := range m.Headers {
		var rec store.BlockRecord
		if err := rlp.DecodeBytes(enc, &rec); err != nil || rec.Header.Number.Uint64() != uint64(i) {
			t.Fatalf("header %d: %v", i, err)
		}
		if i == len(m.Headers)-1 && rec.LastMini != m.MiniIndex {
			t.Fatalf("snapshot at mini-block %d, its block ends at %d", m.MiniIndex, rec.LastMini)
		}
	}
	status, body := snapGet(s, fmt.Sprintf("%s/%d", SnapshotPath, m.ID))
	var byID SnapshotManifest
	if status != fasthttp.StatusOK || json.Unmarshal(body, &byID) != nil || byID.ID != m.ID || byID.Block != m.Block {
		t.Fatalf("manifest by id: %d %s", status, body)
	}

	// The chunks, at a small size, hold the stored snapshot.
	var all []store.SnapshotEntry
	var cursor []byte
	chunks := 0
	for {
		status, body := snapGet(s, fmt.Sprintf("%s/%d/chunk?cursor=%x&max=300", SnapshotPath, m.ID, cursor))
		if status != fasthttp.StatusOK {
			t.Fatalf("chunk at %x: %d %s", cursor, status, body)
		}
		entries, next, err := UnmarshalSnapshotChunk(body)
		if err != nil {
			t.Fatal(err)
		}
		all, cursor = append(all, entries...), next
		chunks++
		if next == nil {
			break
		}
	}
	var want []*store.SnapshotAccount
	if err := s.store.ReadSnapshot(m.ID, func(a *store.SnapshotAccount) error { want = append(want, a); return nil }); err != nil {
		t.Fatal(err)
	}
	accounts, slots := 0, 0
	for _, e := range all {
		if e.Account {
			accounts++
		}
		slots += len(e.Storage)
	}
	wantSlots := 0
	for _, a := range want {
		wantSlots += len(a.Storage)
	}
	if accounts != len(want) || slots != wantSlots || chunks < 2 {
		t.Fatalf("%d accounts and %d slots in %d chunks, want %d and %d", accounts, slots, chunks, len(want), wantSlots)
	}

	// Snapshots rotate out (two are kept): the old id is then gone, not partial.
	deadline := time.Now().Add(5 * time.Second)
	for {
		metas, err := s.store.Snapshots()
		if err != nil {
			t.Fatal(err)
		}
		if metas[0].ID > m.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("snapshots did not rotate")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, uri := range []string{fmt.Sprintf("%s/%d/chunk", SnapshotPath, m.ID), fmt.Sprintf("%s/%d", SnapshotPath, m.ID)} {
		status, body := snapGet(s, uri)
		var e struct{ Error string }
		if status != fasthttp.StatusNotFound || json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Fatalf("%s after rotation: %d %s", uri, status, body)
		}
	}
}

func TestServeSnapshotErrors(t *testing.T) {
	s := startSnapshotting(t)
	m := waitSnapshot(t, s, 0)
	id := fmt.Sprint(m.ID)
	for uri, want := range map[string]int{
		SnapshotPath + "/x/chunk":                                  fasthttp.StatusBadRequest,
		SnapshotPath + "/-1":                                       fasthttp.StatusBadRequest,
		SnapshotPath + "/" + id + "/chunk?cursor=zz":               fasthttp.StatusBadRequest,
		SnapshotPath + "/" + id + "/chunk?cursor=01":               fasthttp.StatusBadRequest,
		SnapshotPath + "/" + id + "/chunk?cursor=02" + zeros(20):   fasthttp.StatusBadRequest,
		SnapshotPath + "/" + id + "/chunk?max=0":                   fasthttp.StatusBadRequest,
		SnapshotPath + "/" + id + "/chunk?max=x":                   fasthttp.StatusBadRequest,
		SnapshotPath + "/99999999/chunk":                           fasthttp.StatusNotFound,
		SnapshotPath + "/99999999":                                 fasthttp.StatusNotFound,
		SnapshotPath + "/" + id + "/chunks":                        fasthttp.StatusNotFound,
		SnapshotPath + "/" + id + "/chunk/x":                       fasthttp.StatusNotFound,
		SnapshotPath + "x":                                         fasthttp.StatusNotFound,
		SnapshotPath + "/" + id + "/chunk?cursor=01" + zeros(20):   fasthttp.StatusOK,
		SnapshotPath + "/" + id + "/chunk?cursor=0x01" + zeros(52): fasthttp.StatusOK,
	} {
		status, body := snapGet(s, uri)
		if status != want {
			t.Errorf("%s: %d %s, want %d", uri, status, body, want)
		}
		if status != fasthttp.StatusOK && !strings.HasPrefix(string(body), `{"error":`) {
			t.Errorf("%s: error body %s", uri, body)
		}
	}

	// At most snapshotServeSlots chunk requests at once.
	for range snapshotServeSlots {
		snapshotSlots <- struct{}{}
	}
	status, _ := snapGet(s, SnapshotPath+"/"+id+"/chunk")
	for range snapshotServeSlots {
		<-snapshotSlots
	}
	if status != fasthttp.StatusServiceUnavailable {
		t.Fatalf("chunk with every slot taken: %d", status)
	}

	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, body := snapGet(s, SnapshotPath); status != fasthttp.StatusServiceUnavailable {
		t.Fatalf("after stop: %d %s", status, body)
	}
}

func zeros(n int) string { return strings.Repeat("00", n) }

func TestSnapshotChunkCodec(t *testing.T) {
	code := []byte{0x60, 0x00}
	entries := []store.SnapshotEntry{
		{Address: common.Address{1}, Account: true, Nonce: 3, Balance: uint256.NewInt(7), CodeHash: crypto.Keccak256Hash(code), Code: code,
			Storage: []store.SlotEntry{{Key: common.Hash{1}, Value: []byte{5}}}},
		{Address: common.Address{2}, Storage: []store.SlotEntry{{Key: common.Hash{2}, Value: bytes.Repeat([]byte{1}, 32)}}},
	}
	next := append([]byte{1}, common.Address{3}.Bytes()...)
	enc, err := MarshalSnapshotChunk(entries, next)
	if err != nil {
		t.Fatal(err)
	}
	got, gotNext, err := UnmarshalSnapshotChunk(enc)
	if err != nil || len(got) != 2 || !bytes.Equal(gotNext, next) || got[0].Nonce != 3 || !bytes.Equal(got[0].Code, code) ||
		!bytes.Equal(got[1].Storage[0].Value, entries[1].Storage[0].Value) {
		t.Fatalf("round trip: %+v %x %v", got, gotNext, err)
	}
	if _, n, err := UnmarshalSnapshotChunk(mustChunk(t, entries, nil)); err != nil || n != nil {
		t.Fatalf("last chunk: next %x, %v", n, err)
	}
	for i := range enc {
		bad := bytes.Clone(enc)
		bad[i] ^= 0x10
		if _, _, err := UnmarshalSnapshotChunk(bad); !errors.Is(err, ErrBadSnapshotChunk) {
			t.Fatalf("flipped byte %d: %v", i, err)
		}
	}
	wrongCode := slices.Clone(entries)
	wrongCode[0].Code = []byte{0x60, 0x01}
	if _, _, err := UnmarshalSnapshotChunk(mustChunk(t, wrongCode, nil)); !errors.Is(err, ErrBadSnapshotChunk) {
		t.Fatalf("code not matching its hash: %v", err)
	}
	if _, _, err := UnmarshalSnapshotChunk(mustChunk(t, entries, []byte{1, 2})); !errors.Is(err, ErrBadSnapshotChunk) {
		t.Fatalf("malformed next cursor: %v", err)
	}
}

func mustChunk(t *testing.T, entries []store.SnapshotEntry, next []byte) []byte {
	t.Helper()
	enc, err := MarshalSnapshotChunk(entries, next)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// FuzzUnmarshalSnapshotChunk: no input makes the decoder panic, and what it
// accepts encodes back to a chunk that decodes the same.
func FuzzUnmarshalSnapshotChunk(f *testing.F) {
	code := []byte{0x60, 0x00}
	seed, _ := MarshalSnapshotChunk([]store.SnapshotEntry{{Address: common.Address{1}, Account: true, Balance: uint256.NewInt(1),
		CodeHash: crypto.Keccak256Hash(code), Code: code, Storage: []store.SlotEntry{{Key: common.Hash{1}, Value: []byte{1}}}}}, nil)
	f.Add(seed)
	f.Add([]byte{1, 0xc2, 0xc0, 0x80, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzChunk(t, data)
		// The same bytes as a body under a valid checksum reach the decoder.
		sealed := append([]byte{snapshotChunkVersion}, data...)
		fuzzChunk(t, binary.BigEndian.AppendUint32(sealed, crc32.Checksum(sealed, castagnoli)))
	})
}

func fuzzChunk(t *testing.T, data []byte) {
	entries, next, err := UnmarshalSnapshotChunk(data)
	if err != nil {
		return
	}
	again, err := MarshalSnapshotChunk(entries, next)
	if err != nil {
		t.Fatal(err)
	}
	e2, n2, err := UnmarshalSnapshotChunk(again)
	if err != nil || !bytes.Equal(n2, next) || len(e2) != len(entries) {
		t.Fatalf("re-encoded chunk: %v", err)
	}
	if !bytes.Equal(mustChunk(t, e2, n2), again) {
		t.Fatal("re-encoding is not stable")
	}
}
