package sequencer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func httpPost(t *testing.T, url, body string) string {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return string(out)
}

// TestRPCMetricsAndReadiness: with --metrics.addr the node exports kestrel_rpc_*
// series; /ready follows the mini-block loop.
func TestRPCMetricsAndReadiness(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.RPC.Addr = "127.0.0.1:0"
	cfg.MetricsAddr = "127.0.0.1:0"
	s, err := New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{s}
	if err := b.Ready(); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Errorf("ready before Start: %v", err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = s.Stop(ctx)
		}
	}()
	rpcURL := "http://" + s.RPCAddr()

	if code, body := httpGet(t, rpcURL+"/ready"); code != http.StatusOK || body != `{"status":"ok"}` {
		t.Errorf("ready: %d %s", code, body)
	}
	if code, _ := httpGet(t, rpcURL+"/health"); code != http.StatusOK {
		t.Errorf("health: %d", code)
	}
	for range 2 {
		if out := httpPost(t, rpcURL, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`); !strings.Contains(out, `"result":"0x7a69"`) {
			t.Fatalf("eth_chainId: %s", out)
		}
	}
	httpPost(t, rpcURL, `{"jsonrpc":"2.0","id":1,"method":"made_up_method"}`)

	_, text := httpGet(t, "http://"+s.MetricsAddr()+"/metrics")
	for _, want := range []string{
		`kestrel_rpc_requests_total{method="eth_chainId"} 2`,
		`kestrel_rpc_request_duration_seconds_count{method="eth_chainId"} 2`,
		`kestrel_rpc_errors_total{class="method_not_found",method="unknown"} 1`,
		`kestrel_rpc_requests_in_flight 0`,
		`kestrel_rpc_response_bytes_total{method="eth_chainId"}`,
		`kestrel_miniblocks_total`, // the node's own series are still there
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(text, "made_up_method") {
		t.Error("an unknown method name became a label value")
	}

	// A halted loop is not ready.
	haltErr := errors.New("disk full")
	s.halted.Store(&haltErr)
	if err := b.Ready(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("ready after a halt: %v", err)
	}
	if code, body := httpGet(t, rpcURL+"/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "disk full") {
		t.Errorf("ready endpoint after a halt: %d %s", code, body)
	}
	s.halted.Store(nil)

	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stopped = true
	if err := s.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if err := b.Ready(); err == nil || !strings.Contains(err.Error(), "stopping") {
		t.Errorf("ready after Stop: %v", err)
	}
}
