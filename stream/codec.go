package stream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/store"
)

// The wire format of the state-diff stream (version 1). A message is
//
//	version (1 byte, = 1) | kind (1 byte) | zstd frame | CRC-32C (4 bytes, big-endian)
//
// where the CRC (Castagnoli) covers every byte before it. The zstd frame holds the
// body: uvarint(len(ctl)) | ctl | data. The body is written as two streams so that
// the compressor sees structure and payload apart: ctl holds tags, flags, counts and
// the values that repeat from one transaction to the next (gas used, selectors),
// data holds what is new in each (addresses, signatures, nonces, amounts), so the
// ctl bytes of a run of similar transactions collapse into a few long matches.
// codec_miniblock.go and codec_header.go give the field order; codec_words.go the
// address, word and number codings shared by both.

// ErrBadMessage is wrapped by every decoding error; the rest of the message says
// what was wrong.
var ErrBadMessage = errors.New("bad stream message")

const (
	// MaxMessageBytes bounds an encoded message. A mini-block is ~10 ms of a
	// block, and a block's gas limit bounds what it can carry; 16 MiB of
	// compressed output is far beyond any real one.
	MaxMessageBytes = 16 << 20
	// MaxDecodedBytes bounds the decompressed body of a message, and separately
	// the size of the mini-block or header a decoder builds from it (words,
	// transactions and logs expand), so that a hostile message cannot make a
	// decoder allocate more than a small multiple of it.
	MaxDecodedBytes = 64 << 20
)

// Kind is what a message carries, its second byte.
type Kind byte

// The kinds of message.
const (
	KindMiniBlock Kind = 1
	KindHeader    Kind = 2
)

func (k Kind) String() string {
	switch k {
	case KindMiniBlock:
		return "mini-block"
	case KindHeader:
		return "header"
	}
	return fmt.Sprintf("kind %d", byte(k))
}

const (
	wireVersion = 1
	// msgOverhead is the version and kind bytes and the checksum.
	msgOverhead = 2 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// zstdCodecs is the compressor and decompressor every Encoder and Decoder shares:
// both are safe for concurrent EncodeAll / DecodeAll and costly to build.
var zstdCodecs = sync.OnceValues(func() (*zstd.Encoder, *zstd.Decoder) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedBetterCompression), // ~1% smaller than SpeedDefault for ~+0.06 us/tx
		zstd.WithEncoderCRC(false),                         // the message has its own checksum
		zstd.WithLowerEncoderMem(true),
	)
	if err != nil {
		panic(fmt.Sprintf("stream: zstd encoder: %v", err)) // only for invalid options
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderMaxMemory(MaxDecodedBytes),
		zstd.WithDecoderMaxWindow(MaxDecodedBytes),
		zstd.IgnoreChecksum(true),
	)
	if err != nil {
		panic(fmt.Sprintf("stream: zstd decoder: %v", err))
	}
	return enc, dec
})

// PeekKind returns the kind of a message after checking its length, checksum and
// version; it does not decompress.
func PeekKind(data []byte) (Kind, error) {
	if len(data) > MaxMessageBytes {
		return 0, fmt.Errorf("%w: %d bytes, over the %d-byte limit", ErrBadMessage, len(data), MaxMessageBytes)
	}
	if len(data) < msgOverhead+1 {
		return 0, fmt.Errorf("%w: too short (%d bytes)", ErrBadMessage, len(data))
	}
	n := len(data) - 4
	if crc32.Checksum(data[:n], castagnoli) != binary.BigEndian.Uint32(data[n:]) {
		return 0, fmt.Errorf("%w: checksum mismatch", ErrBadMessage)
	}
	if data[0] != wireVersion {
		return 0, fmt.Errorf("%w: unsupported version %d", ErrBadMessage, data[0])
	}
	k := Kind(data[1])
	if k != KindMiniBlock && k != KindHeader {
		return 0, fmt.Errorf("%w: unknown kind %d", ErrBadMessage, data[1])
	}
	return k, nil
}

// Encoder encodes mini-blocks and headers. It is reusable and not safe for
// concurrent use. It learns which storage slots of a contract are Solidity
// mapping entries (see slotLearner), so the bytes it produces for a mini-block
// depend on what it encoded before; every message still decodes on its own.
type Encoder struct {
	w       encState
	learner slotLearner
	out     []byte
	// Scratch for the diff.
	order   []acctRef
	derived []derivedSlot
	mask    []bool
}

// NewEncoder returns an encoder with nothing learned.
func NewEncoder() *Encoder {
	e := &Encoder{}
	e.w.init()
	e.learner.init()
	return e
}

// MiniBlock encodes a mini-block. It fails on a mini-block that
// chain.MiniBlock.UnmarshalBinary would refuse (mismatched counts, a nil
// transaction or receipt, an invalid diff).
func (e *Encoder) MiniBlock(mb *chain.MiniBlock) ([]byte, error) {
	if mb == nil {
		return nil, errors.New("stream: nil mini-block")
	}
	e.w.reset()
	if err := e.encodeMiniBlock(mb); err != nil {
		return nil, fmt.Errorf("stream: encode mini-block %d: %w", mb.Index, err)
	}
	return e.seal(KindMiniBlock)
}

// Header encodes a signed header.
func (e *Encoder) Header(h *chain.SignedHeader) ([]byte, error) {
	return e.header(h, 0, 0)
}

// BlockRecord encodes a stored block: its signed header and the range of its
// mini-blocks, as a KindHeader message (Decoder.Header reads it too, without
// the range).
func (e *Encoder) BlockRecord(rec *store.BlockRecord) ([]byte, error) {
	if rec == nil {
		return nil, errors.New("stream: nil block record")
	}
	return e.header(&chain.SignedHeader{Header: rec.Header, Signature: rec.Signature}, rec.FirstMini, rec.LastMini)
}

func (e *Encoder) header(h *chain.SignedHeader, firstMini, lastMini uint64) ([]byte, error) {
	if h == nil || h.Header == nil {
		return nil, errors.New("stream: nil header")
	}
	e.w.reset()
	if err := e.w.encodeHeader(h, firstMini, lastMini); err != nil {
		return nil, fmt.Errorf("stream: encode header: %w", err)
	}
	return e.seal(KindHeader)
}

// seal compresses the body and frames it.
func (e *Encoder) seal(kind Kind) ([]byte, error) {
	body := e.w.body()
	if len(body) > MaxDecodedBytes {
		return nil, fmt.Errorf("stream: encoded %s body is %d bytes, over the %d-byte limit", kind, len(body), MaxDecodedBytes)
	}
	zenc, _ := zstdCodecs()
	out := append(e.out[:0], wireVersion, byte(kind))
	out = zenc.EncodeAll(body, out)
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(out, castagnoli))
	e.out = out
	if len(out) > MaxMessageBytes {
		return nil, fmt.Errorf("stream: encoded %s is %d bytes, over the %d-byte limit", kind, len(out), MaxMessageBytes)
	}
	return bytes.Clone(out), nil
}

// Decoder decodes messages. It is reusable and not safe for concurrent use; it
// keeps no state from one message to the next that changes a result.
type Decoder struct {
	r decState
}

// NewDecoder returns a decoder.
func NewDecoder() *Decoder {
	d := &Decoder{}
	d.r.init()
	return d
}

// MiniBlock decodes a mini-block message and checks what
// chain.MiniBlock.UnmarshalBinary checks (counts, base fee, diff order and
// invariants); it does not check the sequencer's signature.
func (d *Decoder) MiniBlock(data []byte) (*chain.MiniBlock, error) {
	if err := d.open(data, KindMiniBlock); err != nil {
		return nil, err
	}
	mb, err := d.r.decodeMiniBlock()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	return mb, nil
}

// Header decodes a header message.
func (d *Decoder) Header(data []byte) (*chain.SignedHeader, error) {
	if err := d.open(data, KindHeader); err != nil {
		return nil, err
	}
	h, _, _, err := d.r.decodeHeader()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	return h, nil
}

// BlockRecord decodes a header message with the range of the block's
// mini-blocks (0 and 0 when written by Encoder.Header).
func (d *Decoder) BlockRecord(data []byte) (*store.BlockRecord, error) {
	if err := d.open(data, KindHeader); err != nil {
		return nil, err
	}
	h, first, last, err := d.r.decodeHeader()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	return &store.BlockRecord{Header: h.Header, Signature: h.Signature, FirstMini: first, LastMini: last}, nil
}

// open checks the frame, decompresses the body and splits it into its streams.
func (d *Decoder) open(data []byte, want Kind) error {
	k, err := PeekKind(data)
	if err != nil {
		return err
	}
	if k != want {
		return fmt.Errorf("%w: message is a %s, not a %s", ErrBadMessage, k, want)
	}
	_, zdec := zstdCodecs()
	// A fresh buffer per message: decoded byte slices (calldata, log data,
	// code) alias it.
	body, err := zdec.DecodeAll(data[2:len(data)-4], nil)
	if err != nil {
		switch {
		case errors.Is(err, zstd.ErrDecoderSizeExceeded):
			return fmt.Errorf("%w: decompressed size exceeds limit of %d bytes", ErrBadMessage, MaxDecodedBytes)
		case errors.Is(err, zstd.ErrWindowSizeExceeded):
			return fmt.Errorf("%w: compression window exceeds limit of %d bytes", ErrBadMessage, MaxDecodedBytes)
		}
		return fmt.Errorf("%w: decompress: %v", ErrBadMessage, err)
	}
	if len(body) > MaxDecodedBytes {
		return fmt.Errorf("%w: decompressed size exceeds limit of %d bytes", ErrBadMessage, MaxDecodedBytes)
	}
	if err := d.r.reset(body); err != nil {
		return fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	return nil
}
