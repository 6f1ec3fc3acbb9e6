package stream

import (
	"math/rand/v2"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"
)

// The fuzz targets read their input twice: as a message, and as the
// uncompressed body of one (framed by seal), so that mutations reach the parser
// instead of stopping at the checksum. Property: no panic, every error wraps
// ErrBadMessage, and whatever decodes is valid and survives encode and decode
// unchanged.

// maxFuzzBody keeps compression of fuzz inputs cheap.
const maxFuzzBody = 1 << 20

func FuzzDecodeMiniBlock(f *testing.F) {
	enc := NewEncoder()
	var msgs [][]byte
	g := newGen(11)
	for range 24 {
		msg, err := enc.MiniBlock(g.miniBlock())
		if err != nil {
			f.Fatal(err)
		}
		msgs = append(msgs, msg)
	}
	for _, erc20 := range []bool{true, false} {
		msg, err := enc.MiniBlock(transferBlock(f, erc20, 6, 5))
		if err != nil {
			f.Fatal(err)
		}
		msgs = append(msgs, msg)
	}
	r := rand.New(rand.NewPCG(5, 6))
	for _, msg := range msgs {
		b := body(f, msg)
		f.Add(msg)
		f.Add(b)
		f.Add(mutate(r, b))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodedRoundTrip(t, data)
		if len(data) <= maxFuzzBody {
			checkDecodedRoundTrip(t, seal(KindMiniBlock, data))
		}
	})
}

func FuzzDecodeHeader(f *testing.F) {
	enc := NewEncoder()
	g := newGen(12)
	r := rand.New(rand.NewPCG(7, 8))
	for range 24 {
		sh := g.header()
		ref, _ := rlp.EncodeToBytes(sh.Header)
		if rlp.DecodeBytes(ref, new(types.Header)) != nil {
			continue
		}
		msg, err := enc.Header(sh)
		if err != nil {
			f.Fatal(err)
		}
		b := body(f, msg)
		f.Add(msg)
		f.Add(b)
		f.Add(mutate(r, b))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodedHeaderRoundTrip(t, data)
		if len(data) <= maxFuzzBody {
			checkDecodedHeaderRoundTrip(t, seal(KindHeader, data))
		}
	})
}
