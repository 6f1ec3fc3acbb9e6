package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-l2/kestrel/sequencer"
)

// startKestrel runs an in-process sequencer on dir (and the genesis file, ""
// for the dev chain) with its JSON-RPC server on a loopback port. Every block state stays readable (RetainRoots) and no
// snapshot is taken after genesis, so that a restart replays the whole log.
func startKestrel(t *testing.T, dir, genesisFile string, blockInterval time.Duration) *sequencer.Sequencer {
	t.Helper()
	cfg := sequencer.DefaultConfig()
	cfg.DataDir = dir
	cfg.GenesisFile = genesisFile
	cfg.RPC.Addr = "127.0.0.1:0"
	cfg.BlockInterval = blockInterval
	cfg.RetainRoots = 100_000
	cfg.SnapshotEvery = 0
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() && *verboseNodes {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	ctx := context.Background()
	seq, err := sequencer.New(ctx, cfg, logger)
	if err != nil {
		t.Fatalf("new sequencer: %v", err)
	}
	if err := seq.Start(ctx); err != nil {
		t.Fatalf("start sequencer: %v", err)
	}
	return seq
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// rpcClient posts raw JSON-RPC bodies over HTTP and returns the raw answers:
// what is compared is the bytes a client receives, not a decoded form.
type rpcClient struct {
	name string
	url  string
	hc   *http.Client
}

func newRPCClient(name, url string) *rpcClient {
	return &rpcClient{name: name, url: url, hc: &http.Client{Timeout: 30 * time.Second}}
}

// post sends body and returns the response body.
func (c *rpcClient) post(body []byte) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.name, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: read: %w", c.name, err)
	}
	return out, nil
}

// rpcResponse is the envelope of a single answer.
type rpcResponse struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

// call sends one request and decodes the result into out (when not nil).
func (c *rpcClient) call(out any, method string, params ...any) error {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	if err != nil {
		return err
	}
	raw, err := c.post(body)
	if err != nil {
		return err
	}
	var r rpcResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("%s %s: bad answer %q: %w", c.name, method, raw, err)
	}
	if r.Error != nil {
		return fmt.Errorf("%s %s: error %d: %s", c.name, method, r.Error.Code, r.Error.Message)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(r.Result, out)
}
