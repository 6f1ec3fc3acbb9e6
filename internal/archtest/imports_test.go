// Package archtest holds tests of the repository's own rules.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/kestrel-l2/kestrel"

// rolePackages are the node roles and tools; engine code must never import them.
var rolePackages = []string{"sequencer", "replica", "fullnode", "prover", "lightclient", "bench", "cmd"}

// enginePackages are the shared engine packages every role builds on.
var enginePackages = []string{"./core/...", "./store/...", "./rpc/...", "./mempool/...", "./contracts/...", "./stream/..."}

func TestEngineDoesNotImportRoles(t *testing.T) {
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, enginePackages...)
	cmd := exec.Command("go", args...)
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, v := range violations(strings.Fields(string(out))) {
		t.Errorf("an engine package depends on role package %s", v)
	}
}

// violations returns the role packages among deps.
func violations(deps []string) []string {
	var out []string
	for _, dep := range deps {
		for _, role := range rolePackages {
			if dep == module+"/"+role || strings.HasPrefix(dep, module+"/"+role+"/") {
				out = append(out, dep)
			}
		}
	}
	return out
}

func TestViolationsDetectsRoleImports(t *testing.T) {
	deps := []string{module + "/core/state", module + "/sequencer", module + "/cmd/kestrel", module + "/sequencerx", "fmt"}
	got := violations(deps)
	if len(got) != 2 || got[0] != module+"/sequencer" || got[1] != module+"/cmd/kestrel" {
		t.Fatalf("violations = %v", got)
	}
}
