package stream

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// The golden file pins wire format version 1 in two ways. Its messages must keep
// decoding to the same values: that is the format, and breaking it needs a new
// wire version. A fresh encoder must reproduce their bodies byte for byte
// (bodies, not messages: zstd output may change with the library): that pins
// the encoder's choices, which may change deliberately (a better heuristic)
// without a new version — then rewrite the file with
// `go test ./stream -run CodecGolden -update` after checking that the old file
// still decoded.

const goldenFile = "testdata/codec_v1.golden"

func init() {
	// Other tests of the package may define -update too.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files in testdata")
	}
}

func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// goldenValues are the mini-blocks and headers of the golden file, in order,
// all encoded by one encoder.
func goldenValues(t *testing.T) (mbs []*chain.MiniBlock, hs []*chain.SignedHeader) {
	g := newGen(2024)
	for len(mbs) < 6 {
		mbs = append(mbs, g.miniBlock())
	}
	mbs = append(mbs, transferBlock(t, true, 12, 2024), transferBlock(t, false, 5, 2024))
	for len(hs) < 3 {
		h := g.header()
		ref, _ := rlp.EncodeToBytes(h.Header)
		if rlp.DecodeBytes(ref, new(types.Header)) == nil {
			hs = append(hs, h)
		}
	}
	return mbs, hs
}

func TestCodecGolden(t *testing.T) {
	mbs, hs := goldenValues(t)
	enc := NewEncoder()
	var lines []string
	for _, mb := range mbs {
		msg, err := enc.MiniBlock(mb)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, "miniblock "+hex.EncodeToString(msg))
	}
	for _, h := range hs {
		msg, err := enc.Header(h)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, "header "+hex.EncodeToString(msg))
	}
	if updateGolden() {
		if err := os.MkdirAll(filepath.Dir(goldenFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(goldenFile)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	defer f.Close()
	var golden []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		golden = append(golden, sc.Text())
	}
	if len(golden) != len(lines) {
		t.Fatalf("golden file has %d messages, want %d", len(golden), len(lines))
	}
	dec := NewDecoder()
	for i, line := range golden {
		kind, hx, _ := strings.Cut(line, " ")
		msg, err := hex.DecodeString(hx)
		if err != nil {
			t.Fatal(err)
		}
		fresh, _ := hex.DecodeString(strings.SplitN(lines[i], " ", 2)[1])
		if !bytes.Equal(body(t, msg), body(t, fresh)) {
			t.Errorf("message %d (%s): the encoder no longer writes the golden body", i, kind)
		}
		switch kind {
		case "miniblock":
			got, err := dec.MiniBlock(msg)
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if !bytes.Equal(marshal(t, got), marshal(t, mbs[i])) {
				t.Errorf("message %d: golden mini-block decodes differently", i)
			}
		case "header":
			got, err := dec.Header(msg)
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			want := hs[i-len(mbs)]
			if got.Header.Hash() != want.Header.Hash() || !bytes.Equal(got.Signature, want.Signature) {
				t.Errorf("message %d: golden header decodes differently", i)
			}
		default:
			t.Fatalf("golden line %d: unknown kind %q", i, kind)
		}
	}
}
