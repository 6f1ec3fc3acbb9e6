package contracts

import (
	"bytes"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const installHint = "run `npm ci --prefix contracts` from the repository root (needs node and npm), " +
	"or set KESTREL_SKIP_SOLC=1 to skip this check"

// TestArtifactsUpToDate recompiles src/*.sol with the pinned solc and checks
// that the committed artifacts/ are byte-for-byte identical. It fails (rather
// than skipping) when node or solc is missing, unless KESTREL_SKIP_SOLC=1.
func TestArtifactsUpToDate(t *testing.T) {
	if os.Getenv("KESTREL_SKIP_SOLC") == "1" {
		t.Skip("KESTREL_SKIP_SOLC=1: not checking artifacts against solc")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed, cannot verify contracts/artifacts: %s", installHint)
	}
	if _, err := os.Stat(filepath.Join("node_modules", "solc", "package.json")); err != nil {
		t.Fatalf("solc is not installed in contracts/node_modules: %s", installHint)
	}

	// Read the compiler inputs from Go so that `go test` caching notices
	// when they change (files read by the node subprocess are invisible).
	inputs, _ := filepath.Glob(filepath.Join("src", "*.sol"))
	inputs = append(inputs, "compile.js", "package.json", "package-lock.json",
		filepath.Join("node_modules", "solc", "package.json"))
	for _, f := range inputs {
		if _, err := os.ReadFile(f); err != nil {
			t.Fatalf("reading compiler input: %v", err)
		}
	}

	out := t.TempDir()
	cmd := exec.Command(node, "compile.js", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("compile.js failed: %v\n%s\nhint: %s", err, stderr.String(), installHint)
	}
	if stderr.Len() > 0 {
		t.Errorf("solc produced warnings; fix them in src/:\n%s", stderr.String())
	}

	want := listJSON(t, out)
	have := listJSON(t, "artifacts")
	const regen = "artifacts are stale: run `node contracts/compile.js` and commit contracts/artifacts"
	if !slices.Equal(want, have) {
		t.Fatalf("%s\n  generated: %v\n  committed: %v", regen, want, have)
	}
	for _, name := range want {
		gen, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		com, err := os.ReadFile(filepath.Join("artifacts", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gen, com) {
			t.Errorf("%s: %s", name, regen)
		}
	}
}

func listJSON(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

// TestEmbeddedArtifacts checks that every embedded artifact parses and that
// the ABIs expose what the helpers rely on.
func TestEmbeddedArtifacts(t *testing.T) {
	names := Names()
	if !slices.Equal(names, []string{"ERC20", "NFT", "Pool", "Reverter"}) {
		t.Fatalf("unexpected embedded contracts %v", names)
	}
	for _, n := range names {
		a, err := Load(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Bytecode) == 0 || len(a.DeployedBytecode) == 0 {
			t.Errorf("%s: empty bytecode", n)
		}
		if !strings.HasPrefix(a.CompilerVersion, "0.8.28+") {
			t.Errorf("%s: unexpected compiler version %q", n, a.CompilerVersion)
		}
	}
	if _, err := Load("Nope"); err == nil {
		t.Error("Load of unknown contract succeeded")
	}
	erc20 := ERC20()
	for _, m := range []string{"name", "symbol", "decimals", "totalSupply", "balanceOf", "transfer", "transferFrom", "approve", "allowance"} {
		if _, ok := erc20.ABI.Methods[m]; !ok {
			t.Errorf("ERC20 ABI lacks method %s", m)
		}
	}
	if erc20.ABI.Events["Transfer"].ID != ERC20TransferTopic || erc20.ABI.Events["Approval"].ID != ERC20ApprovalTopic {
		t.Error("ERC20 event topics mismatch")
	}
	pool := Pool()
	for _, m := range []string{"swap", "getReserves", "sync", "token0", "token1", "reserve0", "reserve1"} {
		if _, ok := pool.ABI.Methods[m]; !ok {
			t.Errorf("Pool ABI lacks method %s", m)
		}
	}
	if pool.ABI.Events["Swap"].ID != PoolSwapTopic || pool.ABI.Events["Sync"].ID != PoolSyncTopic {
		t.Error("Pool event topics mismatch")
	}
	nft := NFT()
	for _, m := range []string{"name", "symbol", "mint", "totalSupply", "balanceOf", "ownerOf", "transferFrom", "approve", "getApproved", "setApprovalForAll", "isApprovedForAll", "supportsInterface"} {
		if _, ok := nft.ABI.Methods[m]; !ok {
			t.Errorf("NFT ABI lacks method %s", m)
		}
	}
	if nft.ABI.Events["Transfer"].ID != NFTTransferTopic || nft.ABI.Events["Approval"].ID != NFTApprovalTopic ||
		nft.ABI.Events["ApprovalForAll"].ID != NFTApprovalForAllTopic {
		t.Error("NFT event topics mismatch")
	}
	rev := Reverter()
	if rev.ABI.Events["ValueStored"].ID != ReverterValueStoredTopic {
		t.Error("ValueStored topic mismatch")
	}
	if id := rev.ABI.Errors["CustomError"].ID; !bytes.Equal(id[:4], ReverterCustomErrorSelector) {
		t.Error("CustomError selector mismatch")
	}
	// DeployData must not alias the shared bytecode.
	d, err := ERC20DeployData("T", "T", big.NewInt(1))
	if err != nil {
		t.Fatal(err)
	}
	// 3 head words + 2 strings of (length, data) words.
	if !bytes.HasPrefix(d, erc20.Bytecode) || len(d) != len(erc20.Bytecode)+7*32 {
		t.Fatalf("unexpected deploy data length %d", len(d))
	}
	d[0] ^= 0xff
	if erc20.Bytecode[0] == d[0] {
		t.Fatal("DeployData aliases the artifact bytecode")
	}
}
