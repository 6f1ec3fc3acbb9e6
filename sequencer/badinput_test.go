package sequencer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"

	"github.com/kestrel-l2/kestrel/core/chain"
	kesthttptest "github.com/kestrel-l2/kestrel/internal/httptest"
	"github.com/kestrel-l2/kestrel/sequencer"
)

type rpcReply struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func post(t *testing.T, url, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func call(t *testing.T, url, body string) rpcReply {
	t.Helper()
	_, out := post(t, url, body)
	var r rpcReply
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("reply %q: %v", out, err)
	}
	return r
}

func rawTx(t *testing.T, key *ecdsaKey, chainID *big.Int, inner types.TxData) string {
	t.Helper()
	tx, err := types.SignNewTx(key.k, types.LatestSignerForChainID(chainID), inner)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := tx.MarshalBinary()
	return hexutil.Encode(b)
}

// TestBadInputIsRejectedAndChangesNothing sends every kind of bad input the
// issue names to a running node and checks the JSON-RPC error, that no state
// changed and that the node keeps serving.
func TestBadInputIsRejectedAndChangesNothing(t *testing.T) {
	seq, ec, _ := startSequencer(t, t.TempDir(), func(c *sequencer.Config) { c.RPC.MaxBodyBytes = 1 << 20; c.RPC.MaxBatch = 10 })
	url := "http://" + seq.RPCAddr()
	ctx := context.Background()
	alice := &ecdsaKey{chain.DevAccounts()[0].Key}
	aliceAddr := chain.DevAccounts()[0].Address
	to := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	poor, _ := crypto.GenerateKey()
	id := big.NewInt(chain.DevChainID)
	fee := big.NewInt(10 * params.GWei)
	dyn := func(nonce, gas uint64, value *big.Int, data []byte) *types.DynamicFeeTx {
		return &types.DynamicFeeTx{ChainID: id, Nonce: nonce, GasTipCap: big.NewInt(1), GasFeeCap: fee, Gas: gas, To: &to, Value: value, Data: data}
	}
	// Advance alice's nonce to 1 so that nonce 0 is too low.
	first := rawTx(t, alice, id, dyn(0, 21000, big.NewInt(1), nil))
	if r := call(t, url, fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransactionSync","params":[%q]}`, first)); r.Error != nil {
		t.Fatalf("first tx: %+v", r.Error)
	}
	before, _ := ec.PendingBalanceAt(ctx, aliceAddr)
	beforeNonce, _ := ec.PendingNonceAt(ctx, aliceAddr)

	badSig, _ := hexutil.Decode(rawTx(t, alice, id, dyn(1, 21000, big.NewInt(1), nil)))
	badSig[len(badSig)-5] ^= 0xff // corrupt s
	oversized := rawTx(t, alice, id, dyn(1, 10_000_000, nil, make([]byte, 130*1024)))

	cases := []struct {
		name    string
		body    string
		status  int
		code    int
		message string
	}{
		{"malformed JSON", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"`, 200, -32700, ""},
		{"not an object", `"hello"`, 200, -32600, ""},
		{"unknown method", `{"jsonrpc":"2.0","id":1,"method":"eth_nope","params":[]}`, 200, -32601, "the method eth_nope does not exist/is not available"},
		{"bad hex address", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0xzz","latest"]}`, 200, -32602, ""},
		{"odd-length hex", `{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x123"]}`, 200, -32602, ""},
		{"wrong param type", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":[42,"latest"]}`, 200, -32602, ""},
		{"too many params", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[1,2,3]}`, 200, -32602, ""},
		{"missing params", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":[]}`, 200, -32602, ""},
		{"malformed RLP", `{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0xf86b8085"]}`, 200, -32000, ""},
		{"wrong chain id", fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":[%q]}`, rawTx(t, alice, big.NewInt(1), &types.DynamicFeeTx{ChainID: big.NewInt(1), Nonce: 1, GasTipCap: big.NewInt(1), GasFeeCap: fee, Gas: 21000, To: &to})), 200, -32000, "invalid chain id"},
		{"bad signature", fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":[%q]}`, hexutil.Encode(badSig)), 200, -32000, ""},
		{"nonce too low", fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":[%q]}`, rawTx(t, alice, id, dyn(0, 21000, big.NewInt(1), nil))), 200, -32000, "nonce too low"},
		{"nonce too far ahead", fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":[%q]}`, rawTx(t, alice, id, dyn(1_000, 21000, big.NewInt(1), nil))), 200, -32000, "nonce too high"},
		{"insufficient funds", fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":[%q]}`, rawTx(t, &ecdsaKey{poor}, id, dyn(0, 21000, big.NewInt(1), nil))), 200, -32000, "insufficient funds for gas * price + value"},
		{"intrinsic gas too low", fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":[%q]}`, rawTx(t, alice, id, dyn(1, 20000, big.NewInt(1), nil))), 200, -32000, "intrinsic gas too low"},
		{"gas above block limit", fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":[%q]}`, rawTx(t, alice, id, dyn(1, chain.DefaultGasLimit+1, big.NewInt(1), nil))), 200, -32000, "exceeds block gas limit"},
		{"oversized transaction", fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":[%q]}`, oversized), 200, -32000, "oversized data"},
		{"oversized batch", "[" + strings.TrimSuffix(strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},`, 11), ",") + "]", 200, -32600, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out := post(t, url, tc.body)
			if status != tc.status {
				t.Fatalf("HTTP status %d, want %d (%s)", status, tc.status, out)
			}
			if tc.code == 0 {
				return
			}
			var r rpcReply
			if bytes.HasPrefix(out, []byte("[")) {
				// A refused batch is answered, as go-ethereum does, with a one-element batch.
				var rs []rpcReply
				if err := json.Unmarshal(out, &rs); err != nil || len(rs) != 1 {
					t.Fatalf("reply %q: %v", out, err)
				}
				r = rs[0]
			} else if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("reply %q: %v", out, err)
			}
			if r.Error == nil || r.Error.Code != tc.code {
				t.Fatalf("reply %s, want code %d", out, tc.code)
			}
			if tc.message != "" && !strings.Contains(r.Error.Message, tc.message) {
				t.Fatalf("message %q, want it to contain %q", r.Error.Message, tc.message)
			}
		})
	}
	// An oversized body is refused from its Content-Length with HTTP 413, before
	// the body is read (a client still writing it may see the connection close).
	t.Run("oversized body", func(t *testing.T) {
		resp, _, err := kesthttptest.PostDeclaredLength(seq.RPCAddr(), 2<<20)
		if err != nil {
			t.Fatalf("no answer to an oversized body: %v", err)
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("HTTP status %d, want 413", resp.StatusCode)
		}
	})
	// Nothing changed, and the node still serves and includes a good transaction.
	after, _ := ec.PendingBalanceAt(ctx, aliceAddr)
	afterNonce, _ := ec.PendingNonceAt(ctx, aliceAddr)
	if after.Cmp(before) != 0 || afterNonce != beforeNonce {
		t.Fatalf("state changed: balance %v -> %v, nonce %d -> %d", before, after, beforeNonce, afterNonce)
	}
	if pb, _ := ec.PendingBalanceAt(ctx, crypto.PubkeyToAddress(poor.PublicKey)); pb.Sign() != 0 {
		t.Fatal("poor account gained a balance")
	}
	good := rawTx(t, alice, id, dyn(1, 21000, big.NewInt(1), nil))
	if r := call(t, url, fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransactionSync","params":[%q]}`, good)); r.Error != nil {
		t.Fatalf("good tx after bad input: %+v", r.Error)
	}
}

type ecdsaKey struct{ k *ecdsaPriv }
