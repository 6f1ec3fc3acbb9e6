// Package statetest runs Ethereum's state tests (the execution-spec-tests
// "state_test" fixture format) against Kestrel's executor path: the pre-state
// is restored into the flat state (state.State), the selected transaction is
// applied with go-ethereum's core.ApplyMessage over Kestrel's vm.StateDB
// (state.NewStateDB), and the post-state root is computed by Kestrel's Merkle
// tries (state.Merkle) from the transaction's state diff. The root, the logs
// hash and the expected exception are compared with the fixture.
//
// The procedure follows go-ethereum's tests/state_test_util.go (including the
// zero-value touch of the coinbase after the transaction). Fixtures are read
// from JSON files, directories (searched recursively for *.json) and .tar.gz
// archives (streamed).
package statetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/core/types"
)

// Env is a test's block environment.
type Env struct {
	Coinbase      common.UnprefixedAddress `json:"currentCoinbase"`
	Difficulty    *math.HexOrDecimal256    `json:"currentDifficulty"`
	Random        *math.HexOrDecimal256    `json:"currentRandom"`
	GasLimit      math.HexOrDecimal64      `json:"currentGasLimit"`
	Number        math.HexOrDecimal64      `json:"currentNumber"`
	Timestamp     math.HexOrDecimal64      `json:"currentTimestamp"`
	BaseFee       *math.HexOrDecimal256    `json:"currentBaseFee"`
	ExcessBlobGas *math.HexOrDecimal64     `json:"currentExcessBlobGas"`
}

// Auth is an EIP-7702 authorization of the transaction template.
type Auth struct {
	ChainID *math.HexOrDecimal256 `json:"chainId"`
	Address common.Address        `json:"address"`
	Nonce   math.HexOrDecimal64   `json:"nonce"`
	V       math.HexOrDecimal64   `json:"v"`
	R       *math.HexOrDecimal256 `json:"r"`
	S       *math.HexOrDecimal256 `json:"s"`
}

// Tx is the transaction template: the post entries' indexes pick the data, gas
// limit and value.
type Tx struct {
	GasPrice             *math.HexOrDecimal256 `json:"gasPrice"`
	MaxFeePerGas         *math.HexOrDecimal256 `json:"maxFeePerGas"`
	MaxPriorityFeePerGas *math.HexOrDecimal256 `json:"maxPriorityFeePerGas"`
	Nonce                math.HexOrDecimal64   `json:"nonce"`
	To                   string                `json:"to"`
	Data                 []string              `json:"data"`
	AccessLists          []*types.AccessList   `json:"accessLists"`
	GasLimit             []math.HexOrDecimal64 `json:"gasLimit"`
	Value                []string              `json:"value"`
	PrivateKey           hexutil.Bytes         `json:"secretKey"`
	Sender               *common.Address       `json:"sender"`
	BlobVersionedHashes  []common.Hash         `json:"blobVersionedHashes"`
	BlobGasFeeCap        *math.HexOrDecimal256 `json:"maxFeePerBlobGas"`
	AuthorizationList    []*Auth               `json:"authorizationList"`
}

// Indexes pick one transaction out of the template.
type Indexes struct {
	Data  int `json:"data"`
	Gas   int `json:"gas"`
	Value int `json:"value"`
}

// PostEntry is one expected outcome of a fork.
type PostEntry struct {
	Root            common.UnprefixedHash `json:"hash"`
	Logs            common.UnprefixedHash `json:"logs"`
	TxBytes         hexutil.Bytes         `json:"txbytes"`
	ExpectException string                `json:"expectException"`
	Indexes         Indexes               `json:"indexes"`
	State           types.GenesisAlloc    `json:"state"`
}

// Test is one state test. Post is kept raw per fork and decoded on demand
// (PostEntries), so that forks that are not run cost nothing.
type Test struct {
	Env  Env                        `json:"env"`
	Pre  types.GenesisAlloc         `json:"pre"`
	Tx   Tx                         `json:"transaction"`
	Post map[string]json.RawMessage `json:"post"`
}

// ParseFile decodes a fixture file: an object of tests by name.
func ParseFile(raw []byte) (map[string]*Test, error) {
	var tests map[string]*Test
	if err := json.Unmarshal(raw, &tests); err != nil {
		return nil, fmt.Errorf("malformed fixture: %w", err)
	}
	if tests == nil {
		return nil, errors.New("malformed fixture: not an object of tests")
	}
	for name, t := range tests {
		if t == nil {
			return nil, fmt.Errorf("malformed fixture: test %q is null", name)
		}
	}
	return tests, nil
}

// Forks returns the forks the test has post entries for, sorted.
func (t *Test) Forks() []string {
	forks := make([]string, 0, len(t.Post))
	for f := range t.Post {
		forks = append(forks, f)
	}
	sort.Strings(forks)
	return forks
}

// PostEntries decodes the post entries of fork (matched case-insensitively);
// it returns nil, nil when the test has none.
func (t *Test) PostEntries(fork string) ([]*PostEntry, error) {
	raw, ok := t.Post[fork]
	if !ok {
		for f, r := range t.Post {
			if strings.EqualFold(f, fork) {
				raw, ok = r, true
				break
			}
		}
	}
	if !ok {
		return nil, nil
	}
	var posts []*PostEntry
	if err := json.Unmarshal(raw, &posts); err != nil {
		return nil, fmt.Errorf("malformed post entries of %s: %w", fork, err)
	}
	for i, p := range posts {
		if p == nil {
			return nil, fmt.Errorf("malformed post entries of %s: entry %d is null", fork, i)
		}
	}
	return posts, nil
}
