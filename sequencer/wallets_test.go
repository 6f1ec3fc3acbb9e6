package sequencer_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWalletLibraries drives a node with ethers v6 and viem (contracts/wallets):
// chain id, balances, nonces, the three transaction types, deploy and call, logs,
// gas estimates, storage and revert reasons, as a dapp would.
func TestWalletLibraries(t *testing.T) {
	if os.Getenv("KESTREL_SKIP_NODE") == "1" {
		t.Skip("KESTREL_SKIP_NODE=1")
	}
	script, _ := filepath.Abs("../contracts/wallets/wallets.mjs")
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed; install Node.js and run `npm ci --prefix contracts` (or set KESTREL_SKIP_NODE=1)")
	}
	if _, err := os.Stat("../contracts/node_modules/ethers"); err != nil {
		t.Fatal("ethers is not installed; run `npm ci --prefix contracts` (or set KESTREL_SKIP_NODE=1)")
	}
	seq, _, _ := startSequencer(t, t.TempDir(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "node", script, "http://"+seq.RPCAddr()).CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("wallet checks failed: %v", err)
	}
	if !strings.Contains(string(out), "all wallet checks passed") {
		t.Fatal("wallet script did not finish")
	}
}
