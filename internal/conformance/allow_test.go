package conformance

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/common/hexutil"
)

// rule matches differences: by method ("*" for any), by request name prefix
// ("" for any) and by normalised path pattern (see MatchPath).
type rule struct {
	method string
	name   string
	path   string
	reason string
	// check, when set, is a property the two values (Kestrel's, then
	// go-ethereum's) must have for the rule to cover the difference; a
	// difference that matches the rule but fails its check is reported.
	check func(kestrel, geth any) error
}

func matchRule(rules []rule, r *request, d Difference) int {
	for i, rl := range rules {
		if rl.method != "*" && rl.method != r.method {
			continue
		}
		if rl.name != "" && !strings.HasPrefix(r.name, rl.name) {
			continue
		}
		if MatchPath(rl.path, d.Pattern()) {
			return i
		}
	}
	return -1
}

// allowed lists the differences that are legitimate, each with its reason.
// Anything not listed here (or in knownBugs) fails the test.
//
// What is NOT here, on purpose: block hashes, parent hashes, state roots,
// timestamps, mixHash/prevrandao, extraData, base fees, logs blooms, sizes of
// sealed blocks. go-ethereum imports Kestrel's own blocks (engine API
// newPayload), recomputes every derived header field and refuses the block
// unless they are equal, so the two chains are the same chain, hash for hash,
// and every field of every sealed block, transaction, receipt, log, proof
// and trace must match exactly. The EIP-2935 and EIP-4788 system contracts
// behave identically (their slots are compared at every sampled block).
var allowed = []rule{
	{method: "web3_clientVersion", path: "result", check: bothNonEmptyStrings,
		reason: "each node names itself (kestrel/v… vs the go-ethereum node's name)"},
	{method: "eth_gasPrice", path: "result", check: bothQuantities,
		reason: "fee suggestion is a node policy: Kestrel suggests the next base fee plus --rpc.tip, go-ethereum's oracle samples the tips of recent blocks"},
	{method: "eth_maxPriorityFeePerGas", path: "result", check: bothQuantities,
		reason: "fee suggestion is a node policy: Kestrel answers --rpc.tip, go-ethereum's oracle the 60th percentile of recent tips"},
	{method: "eth_newFilter", path: "result", check: bothNonEmptyStrings,
		reason: "filter ids are random, chosen by each node (later filter requests carry each node's own id)"},
	{method: "eth_newBlockFilter", path: "result", check: bothNonEmptyStrings,
		reason: "filter ids are random, chosen by each node (later filter requests carry each node's own id)"},
	// The pending block. Kestrel's is the open block (the mini-blocks so far);
	// go-ethereum's is a candidate its miner builds on request.
	{method: "eth_getBlockByNumber", name: "tag pending", path: "result.stateRoot",
		reason: "Kestrel merklizes only at block close (mini-blocks carry no root) and prints zero; go-ethereum's miner computes a candidate root"},
	{method: "eth_getBlockByNumber", name: "tag pending", path: "result.receiptsRoot",
		reason: "not final while the block is open: Kestrel prints zero, go-ethereum's miner computes a candidate"},
	{method: "eth_getBlockByNumber", name: "tag pending", path: "result.transactionsRoot",
		reason: "not final while the block is open: Kestrel prints zero, go-ethereum's miner computes a candidate"},
	{method: "eth_getBlockByNumber", name: "tag pending", path: "result.logsBloom",
		reason: "not final while the block is open"},
	{method: "eth_getBlockByNumber", name: "tag pending", path: "result.mixHash",
		reason: "prevrandao is the block builder's input: Kestrel's is keccak(\"kestrel/prevrandao\", chainId, number), go-ethereum's miner uses zero without a consensus client"},
	{method: "eth_getBlockByNumber", name: "tag pending", path: "result.extraData",
		reason: "go-ethereum's miner writes its client version into extraData; Kestrel writes none"},
	{method: "eth_getBlockByNumber", name: "tag pending", path: "result.timestamp",
		reason: "each node opens its pending block at its own wall-clock time"},
	{method: "eth_getBlockByNumber", name: "tag pending", path: "result.size",
		reason: "follows from the pending header fields above"},
	{method: "eth_getProof", name: "pending", path: "error.message", check: bothNonEmptyStrings,
		reason: "neither node proves pending state (no trie for it); Kestrel says so, go-ethereum reports the missing trie node"},
	{method: "debug_traceTransaction", name: "unknown tracer", path: "error", check: notMissing,
		reason: "the in-process go-ethereum has no JavaScript tracer engine linked (its lookup panics); Kestrel has none by design. Both refuse"},
	{method: "eth_protocolVersion", path: "", check: kestrelOnlyMethod,
		reason: "go-ethereum no longer serves eth_protocolVersion; Kestrel answers 0x44 (eth/68, as Erigon, Nethermind and Besu do) for tools that still call it (rpc/misc.go)"},
	{method: "eth_sendRawTransaction", name: "blob transaction", path: "error.message", check: bothNonEmptyStrings,
		reason: "Kestrel refuses blob transactions by design (DESIGN §2); go-ethereum refuses this one for its missing sidecar"},
}

// knownBugs are differences that look like Kestrel bugs: they are reported in
// the log, not failed, until fixed. An entry that no longer matches any
// difference fails the test, so the list only shrinks; the lead empties it.
// Each names the exact request (battery_test.go) and says what go-ethereum does.
var knownBugs = []rule{}

// bothNonEmptyStrings checks that both sides answered a non-empty string.
func bothNonEmptyStrings(a, b any) error {
	sa, okA := a.(string)
	sb, okB := b.(string)
	if !okA || !okB || sa == "" || sb == "" {
		return errors.New("want a non-empty string from both nodes")
	}
	return nil
}

// bothQuantities checks that both sides answered a hex quantity.
func bothQuantities(a, b any) error {
	for _, v := range []any{a, b} {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s is not a quantity", Render(v))
		}
		if _, err := hexutil.DecodeBig(s); err != nil {
			return fmt.Errorf("%s is not a quantity: %v", s, err)
		}
	}
	return nil
}

// kestrelOnlyMethod matches Kestrel answering a result where go-ethereum
// answers "method not found" (the two differences: result and error).
func kestrelOnlyMethod(a, b any) error {
	if _, ok := a.(Missing); ok {
		if e, ok := b.(map[string]any); ok && fmt.Sprint(e["code"]) == "-32601" {
			return nil
		}
		return errors.New("go-ethereum's error is not \"method not found\"")
	}
	if _, ok := b.(Missing); ok {
		if _, ok := a.(string); ok {
			return nil
		}
	}
	return errors.New("not a Kestrel-only method")
}

// notMissing checks that both sides have the member (e.g. both answered an
// error, with different codes or messages).
func notMissing(a, b any) error {
	_, ma := a.(Missing)
	_, mb := b.(Missing)
	if ma || mb {
		return errors.New("one node answered, the other did not")
	}
	return nil
}
