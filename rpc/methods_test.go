package rpc

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/consensus/misc/eip1559"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

func TestSimpleMethods(t *testing.T) {
	f := newFakeBackend(t)
	s := newTestServer(t, f, Config{})
	c := f.c
	addr0 := c.addrs[0].Hex()
	tests := []struct {
		method string
		params []any
		want   string
	}{
		{"eth_chainId", nil, `"0x385"`},
		{"net_version", nil, `"901"`},
		{"web3_clientVersion", nil, `"kestrel/v0.1.0-test/linux-amd64"`},
		{"eth_blockNumber", nil, `"0x2"`},
		{"eth_syncing", nil, `false`},
		{"net_listening", nil, `true`},
		{"net_peerCount", nil, `"0x0"`},
		{"eth_accounts", nil, `[]`},
		{"web3_sha3", []any{"0x68656c6c6f20776f726c64"}, `"0x47173285a8d7341e5e972fc677286384f802f8ef42a5ec5f03bbfa254cb01fad"`},
		{"eth_getBalance", []any{addr0, "latest"}, `"0xd3c21bcecceda1000000"`},
		{"eth_getBalance", []any{c.addrs[1].Hex(), "0x1"}, `"0x3e8"`},
		{"eth_getBalance", []any{c.addrs[1].Hex(), "earliest"}, `"0x0"`},
		{"eth_getBalance", []any{c.addrs[1].Hex(), "pending"}, `"0xbb8"`},
		{"eth_getBalance", []any{c.addrs[1].Hex(), map[string]any{"blockNumber": "0x1"}}, `"0x3e8"`},
		{"eth_getBalance", []any{c.addrs[1].Hex(), map[string]any{"blockHash": c.blocks[1].Hash, "requireCanonical": true}}, `"0x3e8"`},
		{"eth_getBalance", []any{c.addrs[1].Hex(), c.blocks[1].Hash.Hex()}, `"0x3e8"`},
		{"eth_getTransactionCount", []any{addr0, "latest"}, `"0x3"`},
		{"eth_getTransactionCount", []any{addr0, "pending"}, `"0xd"`},
		{"eth_getCode", []any{c.contract.Hex(), "latest"}, `"0x6080604052"`},
		{"eth_getCode", []any{addr0, "latest"}, `"0x"`},
		{"eth_getStorageAt", []any{c.contract.Hex(), "0x0", "latest"}, `"0x0000000000000000000000000000000000000000000000000000000000000001"`},
		{"eth_getStorageAt", []any{c.contract.Hex(), "5", "latest"}, `"0x0000000000000000000000000000000000000000000000000000000000000006"`},
		{"eth_getStorageAt", []any{c.contract.Hex(), "0x0000000000000000000000000000000000000000000000000000000000000002", "latest"}, `"0x0000000000000000000000000000000000000000000000000000000000000003"`},
		{"eth_maxPriorityFeePerGas", nil, `"0x3b9aca00"`},
		{"eth_getBlockTransactionCountByNumber", []any{"0x1"}, `"0x4"`},
		{"eth_getBlockTransactionCountByNumber", []any{"pending"}, `"0x1"`},
		{"eth_getBlockTransactionCountByNumber", []any{"0x63"}, `null`},
		{"eth_getBlockTransactionCountByHash", []any{c.blocks[2].Hash}, `"0x2"`},
		{"eth_getBlockTransactionCountByHash", []any{common.Hash{1}}, `null`},
		{"eth_getBlockByNumber", []any{"0x99", false}, `null`},
		{"eth_getBlockByHash", []any{common.Hash{1}, true}, `null`},
		{"eth_getTransactionByHash", []any{common.Hash{1}}, `null`},
		{"eth_getTransactionReceipt", []any{common.Hash{1}}, `null`},
		{"eth_getBlockReceipts", []any{"0x77"}, `null`},
		{"eth_getTransactionByBlockNumberAndIndex", []any{"0x1", "0x9"}, `null`},
		{"eth_getTransactionByBlockHashAndIndex", []any{common.Hash{2}, "0x0"}, `null`},
		{"eth_call", []any{map[string]any{"to": c.contract}}, `"0xcafe"`},
		{"eth_estimateGas", []any{map[string]any{"to": c.contract}}, `"0x5408"`},
	}
	for _, tt := range tests {
		got := result(t, s, tt.method, tt.params...)
		if string(got) != tt.want {
			t.Errorf("%s %v: got %s, want %s", tt.method, tt.params, got, tt.want)
		}
	}
	// eth_gasPrice: pending base fee + tip; the backend's tip must not change.
	pendingBase := c.pending.Header.BaseFee
	want := new(big.Int).Add(pendingBase, big.NewInt(gwei))
	eqJSON(t, "eth_gasPrice", result(t, s, "eth_gasPrice"), mustJSON(t, (*hexutil.Big)(want)))
	if f.tip.Cmp(big.NewInt(gwei)) != 0 {
		t.Fatal("eth_gasPrice modified the backend's tip")
	}
}

func TestBlocksMatchGeth(t *testing.T) {
	f := newFakeBackend(t)
	s := newTestServer(t, f, Config{})
	c := f.c
	for n, b := range c.blocks {
		for _, full := range []bool{false, true} {
			want := mustJSON(t, refBlock(b, full, c.cfg))
			eqJSON(t, "block by number", result(t, s, "eth_getBlockByNumber", hexutil.Uint64(n), full), want)
			eqJSON(t, "block by hash", result(t, s, "eth_getBlockByHash", b.Hash, full), want)
		}
	}
	eqJSON(t, "latest", result(t, s, "eth_getBlockByNumber", "latest", true), mustJSON(t, refBlock(c.blocks[2], true, c.cfg)))
	eqJSON(t, "earliest", result(t, s, "eth_getBlockByNumber", "earliest", false), mustJSON(t, refBlock(c.blocks[0], false, c.cfg)))

	// The open block: hash, nonce and miner are null, as go-ethereum prints its
	// pending block; full transactions have a null blockHash.
	p := c.pending
	ref := refBlock(p, true, c.cfg)
	ref["hash"], ref["nonce"], ref["miner"] = nil, nil, nil
	rtx := refTx(p.Txs[0], p.Senders[0], common.Hash{1}, p.Header.Number.Uint64(), p.Header.Time, 0, p.Header.BaseFee)
	rtx.BlockHash = nil
	ref["transactions"] = []any{rtx}
	eqJSON(t, "pending block", result(t, s, "eth_getBlockByNumber", "pending", true), mustJSON(t, ref))

	// Hand-written expectation for one block to pin the exact shape.
	g := c.blocks[0]
	wantGenesis := `{"baseFeePerGas":"0x3b9aca00","blobGasUsed":"0x0","difficulty":"0x0","excessBlobGas":"0x0","extraData":"0x6b65737472656c",` +
		`"gasLimit":"0x1c9c380","gasUsed":"0x0","hash":"` + g.Hash.Hex() + `","logsBloom":"0x` + strings.Repeat("00", 256) + `",` +
		`"miner":"0x4200000000000000000000000000000000000011","mixHash":"0x3a00000000000000000000000000000000000000000000000000000000000000",` +
		`"nonce":"0x0000000000000000","number":"0x0","parentBeaconBlockRoot":"0xbe00000000000000000000000000000000000000000000000000000000000000",` +
		`"parentHash":"0x0000000000000000000000000000000000000000000000000000000000000000","receiptsRoot":"` + types.EmptyReceiptsHash.Hex() + `",` +
		`"requestsHash":"` + types.EmptyRequestsHash.Hex() + `","sha3Uncles":"` + types.EmptyUncleHash.Hex() + `","size":"` + hexutil.EncodeUint64(g.Size) + `",` +
		`"stateRoot":"0x5e00000000000000000000000000000000000000000000000000000000000000","timestamp":"0x6553f100","transactions":[],` +
		`"transactionsRoot":"` + types.EmptyTxsHash.Hex() + `","uncles":[],"withdrawals":[],"withdrawalsRoot":"` + types.EmptyWithdrawalsHash.Hex() + `"}`
	eqJSON(t, "genesis", result(t, s, "eth_getBlockByNumber", "0x0", false), []byte(wantGenesis))
}

func TestTransactionsMatchGeth(t *testing.T) {
	f := newFakeBackend(t)
	s := newTestServer(t, f, Config{})
	c := f.c
	for _, b := range c.blocks[1:] {
		for i, tx := range b.Txs {
			want := mustJSON(t, refTx(tx, b.Senders[i], b.Hash, b.Header.Number.Uint64(), b.Header.Time, uint64(i), b.Header.BaseFee))
			eqJSON(t, "tx by hash", result(t, s, "eth_getTransactionByHash", tx.Hash()), want)
			eqJSON(t, "tx by block hash and index", result(t, s, "eth_getTransactionByBlockHashAndIndex", b.Hash, hexutil.Uint(i)), want)
			eqJSON(t, "tx by block number and index", result(t, s, "eth_getTransactionByBlockNumberAndIndex", hexutil.Uint64(b.Header.Number.Uint64()), hexutil.Uint(i)), want)
		}
	}
	// A transaction in the open block: blockHash null, position known.
	p := c.pending
	rtx := refTx(p.Txs[0], p.Senders[0], common.Hash{1}, p.Header.Number.Uint64(), p.Header.Time, 0, p.Header.BaseFee)
	rtx.BlockHash = nil
	eqJSON(t, "open-block tx", result(t, s, "eth_getTransactionByHash", p.Txs[0].Hash()), mustJSON(t, rtx))

	// A transaction in the pool: no position, gasPrice = fee cap.
	eqJSON(t, "pool tx", result(t, s, "eth_getTransactionByHash", c.poolTx.Hash()),
		mustJSON(t, refTx(c.poolTx, c.addrs[0], common.Hash{}, 0, 0, 0, nil)))

	// Hand-written: the legacy transfer.
	tx := c.blocks[1].Txs[0]
	v, r, sig := tx.RawSignatureValues()
	want := `{"blockHash":"` + c.blocks[1].Hash.Hex() + `","blockNumber":"0x1","blockTimestamp":"0x6553f101","from":"` + strings.ToLower(c.addrs[0].Hex()) +
		`","gas":"0x5208","gasPrice":"0xb2d05e00","hash":"` + tx.Hash().Hex() + `","input":"0x","nonce":"0x0","to":"` + strings.ToLower(c.addrs[1].Hex()) +
		`","transactionIndex":"0x0","value":"0xde0b6b3a7640000","type":"0x0","chainId":"0x385","v":"` + hexutil.EncodeBig(v) + `","r":"` + hexutil.EncodeBig(r) +
		`","s":"` + hexutil.EncodeBig(sig) + `"}`
	eqJSON(t, "legacy tx", result(t, s, "eth_getTransactionByHash", tx.Hash()), []byte(want))

	// The 1559 transaction in block 2 pays min(tip+base, cap) = cap.
	var dec struct {
		GasPrice     *hexutil.Big `json:"gasPrice"`
		MaxFeePerGas *hexutil.Big `json:"maxFeePerGas"`
		YParity      *string      `json:"yParity"`
		AccessList   []any        `json:"accessList"`
	}
	if err := json.Unmarshal(result(t, s, "eth_getTransactionByHash", c.blocks[2].Txs[1].Hash()), &dec); err != nil {
		t.Fatal(err)
	}
	base := c.blocks[2].Header.BaseFee
	wantPrice := new(big.Int).Add(base, big.NewInt(5*gwei))
	if wantPrice.Cmp(big.NewInt(6*gwei)) > 0 {
		wantPrice = big.NewInt(6 * gwei)
	}
	if dec.GasPrice.ToInt().Cmp(wantPrice) != 0 || dec.YParity == nil {
		t.Errorf("effective gas price %v, want %v (yParity %v)", dec.GasPrice, wantPrice, dec.YParity)
	}
}

func TestReceiptsMatchGeth(t *testing.T) {
	f := newFakeBackend(t)
	s := newTestServer(t, f, Config{})
	c := f.c
	for _, b := range c.blocks[1:] {
		var all []any
		for i, tx := range b.Txs {
			ref := refReceipt(b.Receipts[i], b.Hash, b.Header.Number.Uint64(), b.Senders[i], tx, i)
			all = append(all, ref)
			eqJSON(t, "receipt", result(t, s, "eth_getTransactionReceipt", tx.Hash()), mustJSON(t, ref))
		}
		eqJSON(t, "block receipts", result(t, s, "eth_getBlockReceipts", b.Hash), mustJSON(t, all))
		eqJSON(t, "block receipts by number", result(t, s, "eth_getBlockReceipts", hexutil.Uint64(b.Header.Number.Uint64())), mustJSON(t, all))
	}
	eqJSON(t, "empty block receipts", result(t, s, "eth_getBlockReceipts", "earliest"), []byte(`[]`))

	// The contract creation has a contractAddress; the transfer has null.
	var r struct {
		ContractAddress *common.Address `json:"contractAddress"`
		Logs            []any           `json:"logs"`
	}
	json.Unmarshal(result(t, s, "eth_getTransactionReceipt", c.blocks[1].Txs[2].Hash()), &r)
	if r.ContractAddress == nil || *r.ContractAddress != c.contract || len(r.Logs) != 1 {
		t.Errorf("creation receipt: contractAddress %v logs %d", r.ContractAddress, len(r.Logs))
	}
	if got := result(t, s, "eth_getTransactionReceipt", c.blocks[1].Txs[0].Hash()); !strings.Contains(string(got), `"contractAddress":null`) {
		t.Errorf("transfer receipt: %s", got)
	}

	// Receipt in the open block: blockHash null (also in its logs).
	p := c.pending
	ref := refReceipt(p.Receipts[0], common.Hash{}, 3, p.Senders[0], p.Txs[0], 0)
	ref["blockHash"] = nil
	logJSON := string(mustJSON(t, p.Receipts[0].Logs))
	logJSON = strings.Replace(logJSON, `"blockHash":"0x0000000000000000000000000000000000000000000000000000000000000000"`, `"blockHash":null`, 1)
	ref["logs"] = json.RawMessage(logJSON)
	eqJSON(t, "open receipt", result(t, s, "eth_getTransactionReceipt", p.Txs[0].Hash()), mustJSON(t, ref))
	if got := result(t, s, "eth_getBlockReceipts", "pending"); !strings.HasPrefix(string(got), `[{"blockHash":null`) {
		t.Errorf("pending block receipts: %s", got)
	}
}

func TestGetLogs(t *testing.T) {
	f := newFakeBackend(t)
	s := newTestServer(t, f, Config{})
	c := f.c
	l1 := c.blocks[1].Receipts[2].Logs
	l2 := c.blocks[2].Receipts[1].Logs
	all := append(append([]*types.Log{}, l1...), l2...)
	tests := []struct {
		name   string
		filter map[string]any
		want   []*types.Log
	}{
		{"all", map[string]any{"fromBlock": "earliest", "toBlock": "latest"}, all},
		{"default range is latest", map[string]any{}, l2},
		{"address", map[string]any{"fromBlock": "0x0", "address": c.contract}, all},
		{"address list", map[string]any{"fromBlock": "0x0", "address": []any{c.addrs[0], c.contract}}, all},
		{"other address", map[string]any{"fromBlock": "0x0", "address": c.addrs[1]}, []*types.Log{}},
		{"topic0", map[string]any{"fromBlock": "0x0", "topics": []any{c.topicA}}, []*types.Log{l1[0], l2[0]}},
		{"wildcard then topic", map[string]any{"fromBlock": "0x0", "topics": []any{nil, c.topicB}}, []*types.Log{l2[0]}},
		{"or", map[string]any{"fromBlock": "0x0", "topics": []any{[]any{c.topicB, c.topicA}}}, all},
		{"or with null", map[string]any{"fromBlock": "0x0", "topics": []any{[]any{c.topicB, nil}}}, all},
		{"too many positions", map[string]any{"fromBlock": "0x0", "topics": []any{nil, nil, nil}}, []*types.Log{}},
		{"block hash", map[string]any{"blockHash": c.blocks[1].Hash}, l1},
		{"range 1..1", map[string]any{"fromBlock": "0x1", "toBlock": "0x1"}, l1},
	}
	for _, tt := range tests {
		eqJSON(t, "logs "+tt.name, result(t, s, "eth_getLogs", tt.filter), mustJSON(t, tt.want))
	}

	limited := newTestServer(t, f, Config{MaxLogsRange: 2, MaxLogs: 2})
	e := callErr(t, limited, reqBody(t, 1, "eth_getLogs", map[string]any{"fromBlock": "0x0", "toBlock": "0x2"}))
	if e.Code != CodeLimitExceeded || e.Message != "query exceeds max block range 2" {
		t.Errorf("range limit: %d %q", e.Code, e.Message)
	}
	e = callErr(t, limited, reqBody(t, 1, "eth_getLogs", map[string]any{"fromBlock": "0x1", "toBlock": "0x2"}))
	if e.Code != CodeLimitExceeded || e.Message != "query exceeds max results 2" {
		t.Errorf("result limit: %d %q", e.Code, e.Message)
	}
	if got := result(t, limited, "eth_getLogs", map[string]any{"fromBlock": "0x2", "toBlock": "0x2"}); string(got) != string(mustJSON(t, l2)) {
		t.Errorf("at the result limit: %s", got)
	}
}

func TestFeeHistory(t *testing.T) {
	f := newFakeBackend(t)
	s := newTestServer(t, f, Config{})
	c := f.c
	ratio := func(h *types.Header) float64 { return float64(h.GasUsed) / float64(h.GasLimit) }
	h0, h1, h2 := c.blocks[0].Header, c.blocks[1].Header, c.blocks[2].Header
	next := eip1559.CalcBaseFee(c.cfg, h2, h2.Time+1)

	var got struct {
		OldestBlock  *hexutil.Big     `json:"oldestBlock"`
		Reward       [][]*hexutil.Big `json:"reward"`
		BaseFee      []*hexutil.Big   `json:"baseFeePerGas"`
		GasUsedRatio []float64        `json:"gasUsedRatio"`
		BlobBaseFee  []*hexutil.Big   `json:"baseFeePerBlobGas"`
		BlobRatio    []float64        `json:"blobGasUsedRatio"`
	}
	raw := result(t, s, "eth_feeHistory", "0x3", "latest", []float64{0, 50, 100})
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.OldestBlock.ToInt().Uint64() != 0 || len(got.BaseFee) != 4 || len(got.GasUsedRatio) != 3 || len(got.Reward) != 3 || len(got.BlobBaseFee) != 4 {
		t.Fatalf("shape: %s", raw)
	}
	for i, h := range []*types.Header{h0, h1, h2} {
		if got.BaseFee[i].ToInt().Cmp(h.BaseFee) != 0 || got.GasUsedRatio[i] != ratio(h) {
			t.Errorf("block %d: %s", i, raw)
		}
	}
	if got.BaseFee[3].ToInt().Cmp(next) != 0 {
		t.Errorf("next base fee %v, want %v", got.BaseFee[3], next)
	}
	// Block 0 has no txs: zero rewards. Block 2: blob tx tip 1 gwei (21000 gas),
	// 1559 tx effective tip min(5 gwei, 6 gwei - base).
	for _, r := range got.Reward[0] {
		if r.ToInt().Sign() != 0 {
			t.Errorf("empty block reward %v", r)
		}
	}
	tip2, _ := c.blocks[2].Txs[1].EffectiveGasTip(h2.BaseFee)
	lo, hi := big.NewInt(gwei), tip2
	if lo.Cmp(hi) > 0 {
		lo, hi = hi, lo
	}
	if got.Reward[2][0].ToInt().Cmp(lo) != 0 || got.Reward[2][2].ToInt().Cmp(hi) != 0 {
		t.Errorf("block 2 rewards %v, want %v..%v", got.Reward[2], lo, hi)
	}

	// Decimal count, number as newest, no percentiles: no reward member.
	raw = result(t, s, "eth_feeHistory", 2, "0x1", nil)
	if strings.Contains(string(raw), "reward") || !strings.HasPrefix(string(raw), `{"oldestBlock":"0x0","baseFeePerGas":[`) {
		t.Errorf("no percentiles: %s", raw)
	}
	// Count larger than the chain is clipped; zero count is empty.
	raw = result(t, s, "eth_feeHistory", "0x400", "latest", []float64{})
	if !strings.HasPrefix(string(raw), `{"oldestBlock":"0x0"`) {
		t.Errorf("clipped: %s", raw)
	}
	eqJSON(t, "zero count", result(t, s, "eth_feeHistory", "0x0", "latest", []float64{101}), []byte(`{"oldestBlock":"0x0","gasUsedRatio":null}`))
	// Pending newest includes the open block.
	raw = result(t, s, "eth_feeHistory", "0x1", "pending", nil)
	if !strings.HasPrefix(string(raw), `{"oldestBlock":"0x3"`) {
		t.Errorf("pending: %s", raw)
	}
	// Errors, as go-ethereum's: decoding errors and missing parameters (all
	// three are required) are invalid params, invalid percentiles plain errors.
	for _, tc := range []struct {
		params []any
		code   int
		msg    string
	}{
		{[]any{"0x1", "latest", []float64{50, 10}}, CodeDefault, "invalid reward percentile: #0:50.000000 >= #1:10.000000"},
		{[]any{"0x1", "latest", []float64{101}}, CodeDefault, "invalid reward percentile: 101.000000"},
		{[]any{"0x1", "latest", []float64{-1}}, CodeDefault, "invalid reward percentile: -1.000000"},
		{[]any{"0x1", "latest", "x"}, CodeInvalidParams, "invalid argument 2: json: cannot unmarshal string into Go value of type []float64"},
		{[]any{"-1", "latest", nil}, CodeInvalidParams, "invalid argument 0: "},
		{[]any{nil, "latest", nil}, CodeInvalidParams, `invalid argument 0: invalid hex or decimal integer "null"`},
		{[]any{"0x1", nil, nil}, CodeInvalidParams, "invalid argument 1: hex string without 0x prefix"},
		{[]any{"0x1", "latest"}, CodeInvalidParams, "missing value for required argument 2"},
		{[]any{"0x1"}, CodeInvalidParams, "missing value for required argument 1"},
	} {
		if e := callErr(t, s, reqBody(t, 1, "eth_feeHistory", tc.params...)); e.Code != tc.code || !strings.HasPrefix(e.Message, tc.msg) {
			t.Errorf("%v: got %d %q, want %d %q", tc.params, e.Code, e.Message, tc.code, tc.msg)
		}
	}
	if e := callErr(t, s, reqBody(t, 1, "eth_feeHistory", "0x1", "0x9", nil)); e.Code != CodeDefault || !strings.Contains(e.Message, "request beyond head block") {
		t.Errorf("beyond head: %d %q", e.Code, e.Message)
	}
}

func TestGetProof(t *testing.T) {
	f := newFakeBackend(t)
	s := newTestServer(t, f, Config{})
	addr := f.c.addrs[1]
	got := result(t, s, "eth_getProof", addr, []string{"0x1", "0x0000000000000000000000000000000000000000000000000000000000000002"}, "latest")
	want := `{"address":"` + strings.ToLower(addr.Hex()) + `","accountProof":["0xf851","0xe210"],"balance":"0x3039","codeHash":"` + types.EmptyCodeHash.Hex() +
		`","nonce":"0x7","storageHash":"` + types.EmptyRootHash.Hex() + `","storageProof":[{"key":"0x1","value":"0x42","proof":["0xab"]},` +
		`{"key":"0x0000000000000000000000000000000000000000000000000000000000000002","value":"0x42","proof":["0xab"]}]}`
	eqJSON(t, "proof", got, []byte(want))

	eqJSON(t, "no keys", result(t, s, "eth_getProof", addr, []string{}, "0x1"),
		[]byte(`{"address":"`+strings.ToLower(addr.Hex())+`","accountProof":["0xf851","0xe210"],"balance":"0x3039","codeHash":"`+types.EmptyCodeHash.Hex()+
			`","nonce":"0x7","storageHash":"`+types.EmptyRootHash.Hex()+`","storageProof":[]}`))

	long := "0x" + strings.Repeat("11", 33)
	if e := callErr(t, s, reqBody(t, 1, "eth_getProof", addr, []string{long}, "latest")); e.Code != CodeInvalidParams || !strings.Contains(e.Message, "storage key too long") {
		t.Errorf("long key: %d %q", e.Code, e.Message)
	}
	if e := callErr(t, s, reqBody(t, 1, "eth_getProof", addr, []string{"0xzz"}, "latest")); e.Code != CodeInvalidParams {
		t.Errorf("bad key: %d %q", e.Code, e.Message)
	}
	if e := callErr(t, s, reqBody(t, 1, "eth_getProof", addr, []string{"0x1"})); e.Code != CodeInvalidParams {
		t.Errorf("missing block: %d %q", e.Code, e.Message)
	}
	if e := callErr(t, s, reqBody(t, 1, "eth_getProof", addr, []string{}, "0x77")); e.Code != CodeDefault || e.Message != "header not found" {
		t.Errorf("unknown block: %d %q", e.Code, e.Message)
	}
}

func TestCallArgs(t *testing.T) {
	f := newFakeBackend(t)
	s := newTestServer(t, f, Config{})
	c := f.c

	// No fee fields: fee checks skipped, gas = cap, latest block.
	result(t, s, "eth_call", map[string]any{"from": c.addrs[0], "to": c.contract, "data": "0x1234", "value": "0x10"})
	m := f.lastCall
	if m.Gas != 50_000_000 || !m.SkipNonceAndFeeChecks || string(m.Data) != "\x12\x34" || m.Value.Uint64() != 16 || m.From != c.addrs[0] || f.lastRef.Tag != TagLatest {
		t.Errorf("defaults: %+v ref %+v", m, f.lastRef)
	}
	// Gas above the cap is capped; input wins; legacy gas price.
	result(t, s, "eth_call", map[string]any{"to": c.contract, "gas": "0xffffffffff", "input": "0xab", "data": "0xab", "gasPrice": "0x5", "nonce": "0x3"}, "0x1")
	m = f.lastCall
	if m.Gas != 50_000_000 || m.SkipNonceAndFeeChecks || m.GasPrice.Uint64() != 5 || m.GasFeeCap.Uint64() != 5 || *m.Nonce != 3 || f.lastRef.Number != 1 {
		t.Errorf("legacy price: %+v", m)
	}
	// 1559 fields: gas price = min(tip + base, cap) with the base fee of the block.
	base := c.blocks[2].Header.BaseFee
	result(t, s, "eth_call", map[string]any{"to": c.contract, "maxFeePerGas": hexutil.EncodeBig(new(big.Int).Mul(base, big.NewInt(2))), "maxPriorityFeePerGas": "0x1",
		"accessList": []any{map[string]any{"address": c.contract, "storageKeys": []any{common.Hash{1}}}}})
	m = f.lastCall
	if m.GasPrice.Cmp(new(big.Int).Add(base, big.NewInt(1))) != 0 || m.GasTipCap.Uint64() != 1 || len(m.AccessList) != 1 {
		t.Errorf("1559: %+v", m)
	}
	// eth_estimateGas defaults to pending and no gas limit.
	result(t, s, "eth_estimateGas", map[string]any{"to": c.contract})
	if f.lastRef.Tag != TagPending || f.lastCall.Gas != 0 {
		t.Errorf("estimate defaults: %+v %+v", f.lastCall, f.lastRef)
	}
	result(t, s, "eth_estimateGas", map[string]any{"to": c.contract, "gas": "0x5208"}, "latest")
	if f.lastRef.Tag != TagLatest || f.lastCall.Gas != 21000 {
		t.Errorf("estimate: %+v %+v", f.lastCall, f.lastRef)
	}
	// null args are empty args.
	result(t, s, "eth_call", nil, "latest")

	for name, p := range map[string][]any{
		"bad from":               {map[string]any{"from": "0x12"}},
		"args not an object":     {"0x12"},
		"missing args":           {},
		"too many":               {map[string]any{}, "latest", nil, nil, nil},
		"leading zero gas":       {map[string]any{"gas": "0x0100"}},
		"value over 256 bits":    {map[string]any{"value": "0x1" + strings.Repeat("0", 64)}},
		"negative number as gas": {map[string]any{"gas": -1}},
	} {
		if e := callErr(t, s, reqBody(t, 1, "eth_call", p...)); e.Code != CodeInvalidParams {
			t.Errorf("%s: code %d %q", name, e.Code, e.Message)
		}
	}
	// go-ethereum's CallDefaults errors are plain (-32000).
	for _, tc := range []struct {
		args map[string]any
		msg  string
	}{
		{map[string]any{"chainId": "0x1"}, "chainId does not match node's (have=1, want=901)"},
		{map[string]any{"gasPrice": "0x1", "maxFeePerGas": "0x2"}, "both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified"},
		{map[string]any{"gasPrice": "0x1", "maxPriorityFeePerGas": "0x2"}, "both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified"},
	} {
		if e := callErr(t, s, reqBody(t, 1, "eth_call", tc.args)); e.Code != CodeDefault || e.Message != tc.msg {
			t.Errorf("%v: %d %q", tc.args, e.Code, e.Message)
		}
	}
	// "input" wins over a differing "data", as in go-ethereum's eth_call.
	result(t, s, "eth_call", map[string]any{"data": "0x01", "input": "0x02"})
	if string(f.lastCall.Data) != "\x02" {
		t.Errorf("data %x, want input's 02", f.lastCall.Data)
	}

	// Reverts: code 3, message with reason, data = revert data.
	f.callErr = &RevertError{Reason: "not owner", Data: []byte{0x08, 0xc3, 0x79, 0xa0}}
	e := callErr(t, s, reqBody(t, 1, "eth_call", map[string]any{"to": c.contract}))
	if e.Code != 3 || e.Message != "execution reverted: not owner" || string(e.Data) != `"0x08c379a0"` {
		t.Errorf("revert: %+v %s", e, e.Data)
	}
	e = callErr(t, s, reqBody(t, 1, "eth_estimateGas", map[string]any{"to": c.contract}))
	if e.Code != 3 || string(e.Data) != `"0x08c379a0"` {
		t.Errorf("estimate revert: %+v", e)
	}
	f.callErr = &RevertError{}
	e = callErr(t, s, reqBody(t, 1, "eth_call", map[string]any{"to": c.contract}))
	if e.Code != 3 || e.Message != "execution reverted" || string(e.Data) != `"0x"` {
		t.Errorf("bare revert: %+v %s", e, e.Data)
	}
	f.callErr = errTest
	e = callErr(t, s, reqBody(t, 1, "eth_call", map[string]any{"to": c.contract}))
	if e.Code != CodeDefault || e.Message != "test error" || e.Data != nil {
		t.Errorf("backend error: %+v", e)
	}
}

func TestSendRawTransaction(t *testing.T) {
	f := newFakeBackend(t)
	s := newTestServer(t, f, Config{})
	c := f.c
	tx, _ := types.SignNewTx(c.keys[1], c.signer, &types.DynamicFeeTx{ChainID: c.cfg.ChainID, Nonce: 2, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(gwei), Gas: 21000, To: &c.addrs[0]})
	raw, _ := tx.MarshalBinary()
	eqJSON(t, "send", result(t, s, "eth_sendRawTransaction", hexutil.Bytes(raw)), mustJSON(t, tx.Hash()))

	// Rejections keep the backend's exact message.
	old, _ := types.SignNewTx(c.keys[1], c.signer, &types.DynamicFeeTx{ChainID: c.cfg.ChainID, Nonce: 0, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(gwei), Gas: 21000, To: &c.addrs[0]})
	rawOld, _ := old.MarshalBinary()
	e := callErr(t, s, reqBody(t, 1, "eth_sendRawTransaction", hexutil.Bytes(rawOld)))
	want := "nonce too low: address " + c.addrs[1].Hex() + ", tx: 0 state: 2"
	if e.Code != CodeDefault || e.Message != want {
		t.Errorf("nonce too low: %d %q, want %q", e.Code, e.Message, want)
	}
	e = callErr(t, s, reqBody(t, 1, "eth_sendRawTransaction", "0x"))
	if e.Code != CodeDefault || e.Message != "typed transaction too short" {
		t.Errorf("empty tx: %d %q", e.Code, e.Message)
	}

	// Sync: receipt of the (unsealed) inclusion.
	tx3, _ := types.SignNewTx(c.keys[1], c.signer, &types.DynamicFeeTx{ChainID: c.cfg.ChainID, Nonce: 3, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(gwei), Gas: 21000, To: &c.addrs[0]})
	raw3, _ := tx3.MarshalBinary()
	got := result(t, s, "eth_sendRawTransactionSync", hexutil.Bytes(raw3), 500)
	if !strings.HasPrefix(string(got), `{"blockHash":null,"blockNumber":"0x3"`) || !strings.Contains(string(got), tx3.Hash().Hex()) {
		t.Errorf("sync receipt: %s", got)
	}
	result(t, s, "eth_sendRawTransactionSync", hexutil.Bytes(raw3), "0x1f4")
	result(t, s, "eth_sendRawTransactionSync", hexutil.Bytes(raw3), nil)
	for _, bad := range []any{-1, 1.5, "500", true, "0x01f4"} {
		if e := callErr(t, s, reqBody(t, 1, "eth_sendRawTransactionSync", hexutil.Bytes(raw3), bad)); e.Code != CodeInvalidParams {
			t.Errorf("timeout %v: %d %q", bad, e.Code, e.Message)
		}
	}
	// Timeout: EIP-7966 code 4 with the hash as data.
	f.syncTimeout = true
	e = callErr(t, s, reqBody(t, 1, "eth_sendRawTransactionSync", hexutil.Bytes(raw3)))
	if e.Code != 4 || string(e.Data) != `"`+tx3.Hash().Hex()+`"` || e.Message != ErrSyncTimeout.Error() {
		t.Errorf("sync timeout: %d %q %s", e.Code, e.Message, e.Data)
	}
}

func TestSyncTimeoutResolution(t *testing.T) {
	s := newTestServer(t, newFakeBackend(t), Config{SyncSendMaxTimeout: 5e9})
	for _, tt := range []struct {
		ms   uint64
		want int64
	}{{0, 2e9}, {100, 1e8}, {5000, 5e9}, {999999999, 5e9}, {^uint64(0), 5e9}} {
		if got := s.syncTimeout(tt.ms); int64(got) != tt.want {
			t.Errorf("%d ms: %v", tt.ms, got)
		}
	}
	small := newTestServer(t, newFakeBackend(t), Config{SyncSendMaxTimeout: 1e9})
	if got := small.syncTimeout(0); got != 1e9 {
		t.Errorf("default capped: %v", got)
	}
}

func TestWeb3Sha3(t *testing.T) {
	s := newTestServer(t, newFakeBackend(t), Config{})
	eqJSON(t, "sha3 empty", result(t, s, "web3_sha3", "0x"), mustJSON(t, crypto.Keccak256Hash(nil)))
}
