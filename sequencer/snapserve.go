package sequencer

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/valyala/fasthttp"

	"github.com/kestrel-l2/kestrel/store"
)

// SnapshotPath is where a node serves its state snapshots to bootstrapping
// replicas, beside JSON-RPC on the same listener:
//
//	GET SnapshotPath                         manifest of the newest usable snapshot (JSON)
//	GET SnapshotPath/<id>                    manifest of snapshot id, 404 once it is no longer kept
//	GET SnapshotPath/<id>/chunk?cursor=<hex> a chunk of its state (binary, see MarshalSnapshotChunk)
//
// The chunk request also takes max=<bytes>, a smaller chunk size than the
// default snapshotChunkBytes (tests cut snapshots into many chunks with it).
// An empty or absent cursor is the start; each chunk names the next cursor.
const SnapshotPath = "/kestrel/snapshot"

const (
	// snapshotChunkBytes is the size a chunk is cut at.
	snapshotChunkBytes = 1 << 20
	// SnapshotChunkMaxBytes bounds an encoded chunk: a chunk exceeds
	// snapshotChunkBytes by at most one account's header and code.
	SnapshotChunkMaxBytes = 4 << 20
	// snapshotChunkVersion is the first byte of an encoded chunk.
	snapshotChunkVersion = 1
	// snapshotServeSlots is how many chunk requests are served at once.
	snapshotServeSlots = 4
	// snapshotHeaders is how many blocks before the snapshot's own a manifest
	// carries: the window recovery loads for BLOCKHASH and the RPC.
	snapshotHeaders = 256
)

// snapshotSlots limits chunk requests served at once. It is per process (one
// node per process outside tests): a chunk read is a pebble iteration of up to
// snapshotChunkBytes, and the limit keeps bootstrapping peers from taking the
// disk and cores from block production.
var snapshotSlots = make(chan struct{}, snapshotServeSlots)

// ErrBadSnapshotChunk is returned for a chunk body that does not decode.
var ErrBadSnapshotChunk = errors.New("sequencer: bad snapshot chunk")

// SnapshotManifest describes a snapshot a node serves: what a replica needs,
// beside the state, to start from it.
type SnapshotManifest struct {
	ID        uint64 `json:"id"`
	Block     uint64 `json:"block"`
	MiniIndex uint64 `json:"miniIndex"`
	// Genesis is the chain's genesis JSON as the node stores it.
	Genesis json.RawMessage `json:"genesis"`
	// Headers are the RLP-encoded store.BlockRecord of blocks
	// max(0, Block-256) to Block, in order.
	Headers []hexutil.Bytes `json:"headers"`
}

type snapshotChunkRLP struct {
	Entries []store.SnapshotEntry
	Next    []byte
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MarshalSnapshotChunk encodes a chunk: a version byte, the RLP list
// [entries, next cursor], and a big-endian CRC-32C (Castagnoli) of all bytes
// before it, like the mini-block diff format.
func MarshalSnapshotChunk(entries []store.SnapshotEntry, next []byte) ([]byte, error) {
	body, err := rlp.EncodeToBytes(&snapshotChunkRLP{Entries: entries, Next: next})
	if err != nil {
		return nil, err
	}
	out := append([]byte{snapshotChunkVersion}, body...)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, castagnoli)), nil
}

// UnmarshalSnapshotChunk decodes and checks a chunk written by
// MarshalSnapshotChunk: its checksum, its cursor's form, slot value lengths and
// that code matches its hash. Errors wrap ErrBadSnapshotChunk.
func UnmarshalSnapshotChunk(data []byte) ([]store.SnapshotEntry, []byte, error) {
	bad := func(format string, args ...any) ([]store.SnapshotEntry, []byte, error) {
		return nil, nil, fmt.Errorf("%w: %s", ErrBadSnapshotChunk, fmt.Sprintf(format, args...))
	}
	if len(data) < 5 {
		return bad("%d bytes", len(data))
	}
	if len(data) > SnapshotChunkMaxBytes {
		return bad("%d bytes, over the %d limit", len(data), SnapshotChunkMaxBytes)
	}
	n := len(data) - 4
	if got, want := crc32.Checksum(data[:n], castagnoli), binary.BigEndian.Uint32(data[n:]); got != want {
		return bad("checksum %08x, want %08x", got, want)
	}
	if data[0] != snapshotChunkVersion {
		return bad("version %d", data[0])
	}
	var dec snapshotChunkRLP
	if err := rlp.DecodeBytes(data[1:n], &dec); err != nil {
		return bad("%v", err)
	}
	if len(dec.Next) == 0 {
		dec.Next = nil
	}
	if _, _, _, err := store.DecodeSnapshotCursor(dec.Next); err != nil {
		return bad("next cursor: %v", err)
	}
	for i := range dec.Entries {
		e := &dec.Entries[i]
		if len(e.Code) > 0 && (!e.Account || crypto.Keccak256Hash(e.Code) != e.CodeHash) {
			return bad("account %s: code does not match its hash %s", e.Address, e.CodeHash)
		}
		for _, sl := range e.Storage {
			if len(sl.Value) > common.HashLength {
				return bad("account %s: slot %s: value of %d bytes", e.Address, sl.Key, len(sl.Value))
			}
		}
	}
	return dec.Entries, dec.Next, nil
}

// serveSnapshot serves SnapshotPath. It reads only through pebble snapshots
// and iterators and takes no lock of the node, so block production goes on
// while peers download; a snapshot that rotates out meanwhile answers 404.
func (s *Sequencer) serveSnapshot(ctx *fasthttp.RequestCtx) {
	st := s.store // nil once stopped; Stop stops the RPC server before closing the store
	if st == nil || s.stopped.Load() {
		snapshotError(ctx, fasthttp.StatusServiceUnavailable, "node stopping")
		return
	}
	rest := strings.TrimPrefix(string(ctx.Path()), SnapshotPath)
	if rest == "" || rest == "/" {
		s.serveManifest(ctx, st, nil)
		return
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	if rest[0] != '/' || len(parts) > 2 || (len(parts) == 2 && parts[1] != "chunk") {
		snapshotError(ctx, fasthttp.StatusNotFound, "no such snapshot resource")
		return
	}
	id, err := strconv.ParseUint(parts[0], 10, 64)
	if err != nil {
		snapshotError(ctx, fasthttp.StatusBadRequest, "malformed snapshot id "+strconv.Quote(parts[0]))
		return
	}
	if len(parts) == 1 {
		s.serveManifest(ctx, st, &id)
		return
	}
	s.serveChunk(ctx, st, id)
}

// serveManifest answers the manifest of snapshot id, or of the newest snapshot
// whose block record exists (the snapshot is listed before its block is
// sealed) when id is nil.
func (s *Sequencer) serveManifest(ctx *fasthttp.RequestCtx, st *store.Store, id *uint64) {
	metas, err := st.Snapshots()
	if err != nil {
		snapshotError(ctx, fasthttp.StatusInternalServerError, err.Error())
		return
	}
	var meta *store.SnapshotMeta
	for i := len(metas) - 1; i >= 0 && meta == nil; i-- {
		if id != nil && metas[i].ID != *id {
			continue
		}
		if _, err := st.Block(metas[i].Block); errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			snapshotError(ctx, fasthttp.StatusInternalServerError, err.Error())
			return
		}
		meta = &metas[i]
	}
	if meta == nil {
		if id != nil {
			snapshotError(ctx, fasthttp.StatusNotFound, fmt.Sprintf("snapshot %d is not kept", *id))
		} else {
			snapshotError(ctx, fasthttp.StatusNotFound, "no snapshot available")
		}
		return
	}
	genesis, err := st.Genesis()
	if err != nil {
		snapshotError(ctx, fasthttp.StatusInternalServerError, "genesis: "+err.Error())
		return
	}
	m := SnapshotManifest{ID: meta.ID, Block: meta.Block, MiniIndex: meta.MiniIndex, Genesis: genesis}
	from := uint64(0)
	if meta.Block > snapshotHeaders {
		from = meta.Block - snapshotHeaders
	}
	for n := from; n <= meta.Block; n++ {
		rec, err := st.Block(n)
		if err == nil {
			var enc []byte
			if enc, err = rlp.EncodeToBytes(rec); err == nil {
				m.Headers = append(m.Headers, enc)
				continue
			}
		}
		snapshotError(ctx, fasthttp.StatusInternalServerError, fmt.Sprintf("block %d: %v", n, err))
		return
	}
	body, err := json.Marshal(&m)
	if err != nil {
		snapshotError(ctx, fasthttp.StatusInternalServerError, err.Error())
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

func (s *Sequencer) serveChunk(ctx *fasthttp.RequestCtx, st *store.Store, id uint64) {
	args := ctx.QueryArgs()
	cursor, err := hex.DecodeString(strings.TrimPrefix(string(args.Peek("cursor")), "0x"))
	if err != nil {
		snapshotError(ctx, fasthttp.StatusBadRequest, "malformed cursor: "+err.Error())
		return
	}
	if len(cursor) == 0 {
		cursor = nil
	}
	size := snapshotChunkBytes
	if v := args.Peek("max"); v != nil {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 {
			snapshotError(ctx, fasthttp.StatusBadRequest, "malformed max "+strconv.Quote(string(v)))
			return
		}
		size = min(n, size)
	}
	select {
	case snapshotSlots <- struct{}{}:
		defer func() { <-snapshotSlots }()
	default:
		ctx.Response.Header.Set("Retry-After", "1")
		snapshotError(ctx, fasthttp.StatusServiceUnavailable, "too many snapshot downloads; retry")
		return
	}
	entries, next, err := st.SnapshotChunk(id, cursor, size)
	switch {
	case errors.Is(err, store.ErrBadCursor):
		snapshotError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	case errors.Is(err, store.ErrNotFound):
		snapshotError(ctx, fasthttp.StatusNotFound, fmt.Sprintf("snapshot %d is not kept", id))
		return
	case err != nil:
		s.log.Error("Snapshot chunk failed", "id", id, "cursor", hexutil.Bytes(cursor), "err", err)
		snapshotError(ctx, fasthttp.StatusInternalServerError, err.Error())
		return
	}
	body, err := MarshalSnapshotChunk(entries, next)
	if err == nil && len(body) > SnapshotChunkMaxBytes {
		err = fmt.Errorf("chunk of %d bytes", len(body))
	}
	if err != nil {
		snapshotError(ctx, fasthttp.StatusInternalServerError, err.Error())
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/octet-stream")
	ctx.SetBody(body)
}

// snapshotError answers a JSON error object {"error": msg}.
func snapshotError(ctx *fasthttp.RequestCtx, status int, msg string) {
	body, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}
