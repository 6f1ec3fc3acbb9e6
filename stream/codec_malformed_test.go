package stream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// seal frames an uncompressed body as a message of the given kind.
func seal(kind Kind, body []byte) []byte {
	zenc, _ := zstdCodecs()
	return sealFrame(kind, zenc.EncodeAll(body, nil))
}

// sealFrame frames an already compressed body.
func sealFrame(kind Kind, frame []byte) []byte {
	out := append([]byte{wireVersion, byte(kind)}, frame...)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, castagnoli))
}

// body returns the uncompressed body of a message.
func body(t testing.TB, msg []byte) []byte {
	t.Helper()
	_, zdec := zstdCodecs()
	b, err := zdec.DecodeAll(msg[2:len(msg)-4], nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// streams builds a body from its two streams.
func streams(ctl, data []byte) []byte {
	return append(append(binary.AppendUvarint(nil, uint64(len(ctl))), ctl...), data...)
}

// expectBad checks that decoding fails with ErrBadMessage and, when want is
// not empty, a message containing it.
func expectBad(t *testing.T, what string, msg []byte, want string) {
	t.Helper()
	var err error
	if k, perr := PeekKind(msg); perr == nil && k == KindHeader {
		_, err = NewDecoder().Header(msg)
	} else {
		_, err = NewDecoder().MiniBlock(msg)
	}
	if err == nil || !errors.Is(err, ErrBadMessage) {
		t.Fatalf("%s: decoded without error %v", what, err)
	}
	if want != "" && !strings.Contains(err.Error(), want) {
		t.Fatalf("%s: error %q does not say %q", what, err, want)
	}
}

func smallBlock(t testing.TB) (*chain.MiniBlock, []byte) {
	mb := transferBlock(t, true, 8, 42)
	msg, err := NewEncoder().MiniBlock(mb)
	if err != nil {
		t.Fatal(err)
	}
	return mb, msg
}

func TestCodecMalformedFrame(t *testing.T) {
	_, msg := smallBlock(t)
	for n := range len(msg) {
		expectBad(t, "truncated", msg[:n], "")
	}
	for i := range msg {
		for bit := range 8 {
			bad := bytes.Clone(msg)
			bad[i] ^= 1 << bit
			expectBad(t, "flipped", bad, "")
		}
	}
	expectBad(t, "flipped byte", func() []byte { b := bytes.Clone(msg); b[len(b)/2] ^= 0x40; return b }(), "checksum mismatch")
	expectBad(t, "short", msg[:6], "too short")
	v7 := append([]byte{7}, msg[1:len(msg)-4]...)
	v7 = binary.BigEndian.AppendUint32(v7, crc32.Checksum(v7, castagnoli))
	expectBad(t, "version", v7, "unsupported version 7")
	expectBad(t, "kind", sealFrame(9, msg[2:len(msg)-4]), "unknown kind 9")
	expectBad(t, "wrong kind", sealFrame(KindHeader, msg[2:len(msg)-4]), "")
	if _, err := NewDecoder().Header(msg); err == nil || !strings.Contains(err.Error(), "not a header") {
		t.Fatalf("mini-block decoded as a header: %v", err)
	}
	expectBad(t, "garbage frame", sealFrame(KindMiniBlock, []byte("not a zstd frame at all")), "decompress")
	expectBad(t, "oversized", make([]byte, MaxMessageBytes+1), "over the")

	// A valid checksum over garbage, and valid frames of garbage bodies.
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		g := make([]byte, r.IntN(300))
		for i := range g {
			g[i] = byte(r.Uint32())
		}
		expectBad(t, "garbage", sealFrame(KindMiniBlock, g), "")
		expectBad(t, "garbage body", seal(KindMiniBlock, g), "")
		expectBad(t, "garbage header body", seal(KindHeader, g), "")
	}
}

// TestCodecZstdBomb: small frames that decompress past MaxDecodedBytes are
// refused, whether or not the frame announces its size.
func TestCodecZstdBomb(t *testing.T) {
	zeros := make([]byte, MaxDecodedBytes+1)
	zenc, _ := zstdCodecs()
	framed := zenc.EncodeAll(zeros, nil)
	var stream bytes.Buffer
	w, err := zstd.NewWriter(&stream, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(zeros); off += 1 << 20 {
		if _, err := w.Write(zeros[off:min(off+1<<20, len(zeros))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for name, frame := range map[string][]byte{"sized frame": framed, "streamed frame": stream.Bytes()} {
		if len(frame) > 64<<10 {
			t.Fatalf("%s: the bomb is %d bytes", name, len(frame))
		}
		expectBad(t, name, sealFrame(KindMiniBlock, frame), "exceeds limit")
	}
}

func TestCodecMalformedBody(t *testing.T) {
	_, msg := smallBlock(t)
	b := body(t, msg)
	n, k := binary.Uvarint(b)
	ctl, data := b[k:k+int(n)], b[k+int(n):]

	// Every truncation of either stream fails cleanly.
	for i := range len(ctl) {
		expectBad(t, "short ctl", seal(KindMiniBlock, streams(ctl[:i], data)), "")
	}
	for i := range len(data) {
		expectBad(t, "short data", seal(KindMiniBlock, streams(ctl, data[:i])), "")
	}
	expectBad(t, "trailing", seal(KindMiniBlock, streams(ctl, append(bytes.Clone(data), 0))), "left over")
	expectBad(t, "stream length", seal(KindMiniBlock, append(binary.AppendUvarint(nil, 1<<20), b...)), "bad stream lengths")

	// Oversized counts: the transaction count sits after flags, index in
	// block and the coinbase's address code.
	huge := bytes.Clone(ctl)
	if huge[3] != 8 {
		t.Fatalf("unexpected transaction count %d", huge[3])
	}
	huge = append(append(bytes.Clone(huge[:3]), binary.AppendUvarint(nil, 1<<40)...), huge[4:]...)
	expectBad(t, "huge count", seal(KindMiniBlock, streams(huge, data)), "more than the input holds")

	// A transaction whose calldata claims far more words than the budget:
	// one ctl byte per zero word would expand 32 times.
	words := 3 << 20
	bomb := []byte{0, 0, addrCodeNew, 1, 2, addrCodeNew, 0, 0}
	bomb = append(bomb, binary.AppendUvarint(nil, uint64(words)<<1)...)
	bomb = append(bomb, 0xa9, 0x05, 0x9c, 0xbb)
	bomb = append(bomb, make([]byte, words)...)
	bdata := make([]byte, 5+1+20+32+1+20+1) // uvarints, base fee, coinbase, random, base, sender, nonce
	expectBad(t, "expanding words", seal(KindMiniBlock, streams(bomb, bdata)), "decoded size limit")

	// Random mutations of the body: no panic, and whatever decodes survives
	// a round trip (the fuzz targets do this at scale).
	r := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		mut := mutate(r, b)
		checkDecodedRoundTrip(t, seal(KindMiniBlock, mut))
	}
}

// mutate flips, deletes, inserts or duplicates a few bytes.
func mutate(r *rand.Rand, b []byte) []byte {
	out := bytes.Clone(b)
	for range 1 + r.IntN(3) {
		if len(out) == 0 {
			break
		}
		i := r.IntN(len(out))
		switch r.IntN(5) {
		case 0:
			out[i] ^= byte(1 << r.IntN(8))
		case 1:
			out[i] = byte(r.Uint32())
		case 2:
			out = append(out[:i], out[min(len(out), i+1+r.IntN(4)):]...)
		case 3:
			out = append(out[:i], append([]byte{byte(r.Uint32())}, out[i:]...)...)
		default:
			j := r.IntN(len(out))
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// checkDecodedRoundTrip decodes msg; if that succeeds, the result must be a
// valid mini-block (chain.MiniBlock.UnmarshalBinary accepts its encoding) that
// encodes and decodes again to the same bytes.
func checkDecodedRoundTrip(t testing.TB, msg []byte) {
	t.Helper()
	mb, err := NewDecoder().MiniBlock(msg)
	if err != nil {
		if !errors.Is(err, ErrBadMessage) {
			t.Fatalf("error %v does not wrap ErrBadMessage", err)
		}
		return
	}
	ref, err := mb.MarshalBinary()
	if err != nil {
		t.Fatalf("decoded mini-block does not marshal: %v", err)
	}
	var back chain.MiniBlock
	if err := back.UnmarshalBinary(ref); err != nil {
		t.Fatalf("decoded mini-block is invalid: %v", err)
	}
	again, err := NewEncoder().MiniBlock(mb)
	if err != nil {
		t.Fatalf("decoded mini-block does not encode: %v", err)
	}
	mb2, err := NewDecoder().MiniBlock(again)
	if err != nil {
		t.Fatalf("re-encoded mini-block does not decode: %v", err)
	}
	if ref2, _ := mb2.MarshalBinary(); !bytes.Equal(ref, ref2) {
		t.Fatal("re-encoded mini-block differs")
	}
}

// checkDecodedHeaderRoundTrip is checkDecodedRoundTrip for headers (read as
// block records, with their mini-block range).
func checkDecodedHeaderRoundTrip(t testing.TB, msg []byte) {
	t.Helper()
	rec, err := NewDecoder().BlockRecord(msg)
	if err != nil {
		if !errors.Is(err, ErrBadMessage) {
			t.Fatalf("error %v does not wrap ErrBadMessage", err)
		}
		return
	}
	again, err := NewEncoder().BlockRecord(rec)
	if err != nil {
		t.Fatalf("decoded header does not encode: %v", err)
	}
	rec2, err := NewDecoder().BlockRecord(again)
	if err != nil {
		t.Fatalf("re-encoded header does not decode: %v", err)
	}
	if rec2.Header.Hash() != rec.Header.Hash() || !bytes.Equal(rec2.Signature, rec.Signature) ||
		rec2.FirstMini != rec.FirstMini || rec2.LastMini != rec.LastMini {
		t.Fatal("re-encoded header differs")
	}
}
