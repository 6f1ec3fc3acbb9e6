package replica

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/kestrel-l2/kestrel/rpc"
)

// TestForwarderAnswers checks what the replica makes of the sequencer's
// answers: hashes and JSON-RPC errors pass through unchanged (code, message,
// data); a malformed, partial, duplicated or failed answer becomes a clear
// "sequencer unreachable" error for the transactions it does not answer.
func TestForwarderAnswers(t *testing.T) {
	hash := `"0x` + strings.Repeat("ab", 32) + `"`
	for name, tc := range map[string]struct {
		status int
		body   string
		check  func(t *testing.T, errs []error)
	}{
		"hash and error": {200, `[{"id":0,"result":` + hash + `},{"id":1,"error":{"code":-32000,"message":"nonce too low","data":{"x":1}}}]`,
			func(t *testing.T, errs []error) {
				var re *rpc.Error
				if errs[0] != nil || !errors.As(errs[1], &re) || re.Code != -32000 || re.Message != "nonce too low" || string(re.Data.(json.RawMessage)) != `{"x":1}` {
					t.Fatalf("errs %v (%#v)", errs, re)
				}
			}},
		"batch-level error": {200, `{"id":null,"error":{"code":-32600,"message":"batch too large"}}`,
			func(t *testing.T, errs []error) {
				var re *rpc.Error
				if !errors.As(errs[0], &re) || re.Code != -32600 || !errors.As(errs[1], &re) {
					t.Fatalf("errs %v", errs)
				}
			}},
		"garbage":    {200, `<html>`, unreachable},
		"http error": {502, `bad gateway`, unreachable},
		"missing and duplicate ids": {200, `[{"id":0,"result":` + hash + `},{"id":0,"result":` + hash + `},{"id":7,"result":` + hash + `}]`,
			func(t *testing.T, errs []error) {
				if errs[0] != nil || !errors.Is(errs[1], errSequencerUnreachable) {
					t.Fatalf("errs %v", errs)
				}
			}},
		"malformed hash": {200, `[{"id":0,"result":"0x12"},{"id":1,"result":5}]`, unreachable},
	} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			})}
			go srv.Serve(ln)
			defer srv.Close()
			f := newForwarder("http://" + ln.Addr().String())
			defer f.close()
			_, errs := f.SendRawTransactions(context.Background(), [][]byte{{1}, {2}})
			tc.check(t, errs)
		})
	}
	// Nothing listening.
	f := newForwarder("http://127.0.0.1:1")
	_, errs := f.SendRawTransactions(context.Background(), [][]byte{{1}})
	unreachable(t, errs)
}

func unreachable(t *testing.T, errs []error) {
	t.Helper()
	for i, err := range errs {
		if !errors.Is(err, errSequencerUnreachable) {
			t.Fatalf("transaction %d: %v, want sequencer unreachable", i, err)
		}
	}
}
