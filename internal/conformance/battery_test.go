package conformance

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/contracts"
	"github.com/kestrel-l2/kestrel/core/chain"
)

// request is one JSON-RPC request of the battery, sent verbatim to both nodes.
type request struct {
	// name tells what the request checks; allow-list rules may match it.
	name   string
	method string
	params []any
	// raw, when set, is the whole body (malformed requests, batches).
	raw string
	// optional marks methods Kestrel may not serve yet: when Kestrel answers
	// "method not found" the method is skipped, with a note in the log.
	optional bool
}

func (r *request) body() []byte {
	if r.raw != "" {
		return []byte(r.raw)
	}
	p := r.params
	if p == nil {
		p = []any{}
	}
	b, err := json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		ID      int    `json:"id"`
		Method  string `json:"method"`
		Params  []any  `json:"params"`
	}{"2.0", 1, r.method, p})
	if err != nil {
		panic(err)
	}
	return b
}

func (r *request) label() string { return r.method + " [" + r.name + "]" }

// q is a hex quantity.
func q(n uint64) string { return hexutil.EncodeUint64(n) }

// raw is a parameter written verbatim.
type raw = json.RawMessage

// obj is a JSON object parameter.
type obj = map[string]any

var (
	unknownHash = common.HexToHash("0x00000000000000000000000000000000000000000000000000000000deadbeef")
	neverUsed   = common.HexToAddress("0x000000000000000000000000000000000000dEaD")
)

// balanceSlot is the storage key of balanceOf[a] in contracts/src/ERC20.sol
// (name, symbol, totalSupply, then the balanceOf mapping at slot 3).
func balanceSlot(a common.Address) common.Hash {
	return crypto.Keccak256Hash(common.LeftPadBytes(a[:], 32), common.LeftPadBytes([]byte{3}, 32))
}

// battery is the list of requests compared in one pass (the filter methods
// and eth_sendRawTransaction, which change node state, come separately).
func battery(f *chainFacts, short bool) []request {
	w := f.w
	var rs []request
	add := func(name, method string, params ...any) {
		rs = append(rs, request{name: name, method: method, params: params})
	}
	opt := func(name, method string, params ...any) {
		rs = append(rs, request{name: name, method: method, params: params, optional: true})
	}
	addRaw := func(name, method, body string) { rs = append(rs, request{name: name, method: method, raw: body}) }
	head := f.head
	beyond := head + 1000
	tags := []string{"latest", "earliest", "safe", "finalized", "pending"}
	s := w.senders

	// Node facts.
	for _, m := range []string{"eth_chainId", "net_version", "net_listening", "net_peerCount", "web3_clientVersion",
		"eth_blockNumber", "eth_syncing", "eth_accounts", "eth_gasPrice", "eth_maxPriorityFeePerGas"} {
		add("no params", m)
	}
	add("no params", "eth_protocolVersion")
	for _, m := range []string{"eth_blobBaseFee", "eth_mining", "eth_hashrate", "eth_coinbase"} {
		opt("no params", m)
	}
	add("empty", "web3_sha3", "0x")
	add("bytes", "web3_sha3", "0x68656c6c6f20776f726c64")
	add("not hex", "web3_sha3", "hello")
	add("odd length", "web3_sha3", "0x123")
	add("missing param", "web3_sha3")
	add("extra param", "eth_chainId", "0x1")

	// Blocks by number, hash and tag; receipts; counts; transactions by position.
	every := uint64(1)
	for n := uint64(0); n <= head; n++ {
		b := f.blocks[n]
		nq := q(n)
		add("full", "eth_getBlockByNumber", nq, true)
		add("hashes", "eth_getBlockByNumber", nq, false)
		add("full", "eth_getBlockByHash", b.hash, true)
		add("hashes", "eth_getBlockByHash", b.hash, false)
		add("by number", "eth_getBlockReceipts", nq)
		add("by hash", "eth_getBlockReceipts", b.hash)
		add("by number", "eth_getBlockTransactionCountByNumber", nq)
		add("by hash", "eth_getBlockTransactionCountByHash", b.hash)
		add("index 0", "eth_getTransactionByBlockNumberAndIndex", nq, "0x0")
		add("index past the end", "eth_getTransactionByBlockNumberAndIndex", nq, q(uint64(len(b.txs))))
		if len(b.txs) > 0 {
			add("last index", "eth_getTransactionByBlockHashAndIndex", b.hash, q(uint64(len(b.txs)-1)))
		}
		add("index past the end", "eth_getTransactionByBlockHashAndIndex", b.hash, q(uint64(len(b.txs))))
		if b.logged || n%10 == 0 {
			add("one block by range", "eth_getLogs", obj{"fromBlock": nq, "toBlock": nq})
			add("one block by hash", "eth_getLogs", obj{"blockHash": b.hash})
		}
		if n%5 == 0 {
			add("EIP-1898 hash object", "eth_getBlockReceipts", obj{"blockHash": b.hash})
			add("EIP-1898 number object", "eth_getBlockReceipts", obj{"blockNumber": nq})
			opt("by number", "eth_getUncleCountByBlockNumber", nq)
			opt("by hash", "eth_getUncleCountByBlockHash", b.hash)
			opt("index 0", "eth_getUncleByBlockNumberAndIndex", nq, "0x0")
			opt("index 0", "eth_getUncleByBlockHashAndIndex", b.hash, "0x0")
			opt("by number", "eth_getHeaderByNumber", nq)
			opt("by hash", "eth_getHeaderByHash", b.hash)
		}
	}
	for _, tag := range tags {
		add("tag "+tag+" full", "eth_getBlockByNumber", tag, true)
		add("tag "+tag+" hashes", "eth_getBlockByNumber", tag, false)
		add("tag "+tag, "eth_getBlockTransactionCountByNumber", tag)
		add("tag "+tag, "eth_getBlockReceipts", tag)
		add("tag "+tag+" index 0", "eth_getTransactionByBlockNumberAndIndex", tag, "0x0")
		opt("tag "+tag, "eth_getUncleCountByBlockNumber", tag)
	}
	// Missing objects.
	add("missing number", "eth_getBlockByNumber", q(beyond), false)
	add("missing number full", "eth_getBlockByNumber", q(beyond), true)
	add("missing hash", "eth_getBlockByHash", unknownHash, true)
	add("missing number", "eth_getBlockTransactionCountByNumber", q(beyond))
	add("missing hash", "eth_getBlockTransactionCountByHash", unknownHash)
	add("missing number", "eth_getBlockReceipts", q(beyond))
	add("missing hash", "eth_getBlockReceipts", unknownHash)
	add("missing", "eth_getTransactionByHash", unknownHash)
	add("missing", "eth_getTransactionReceipt", unknownHash)
	add("missing block", "eth_getTransactionByBlockNumberAndIndex", q(beyond), "0x0")
	add("missing block", "eth_getTransactionByBlockHashAndIndex", unknownHash, "0x0")
	opt("missing number", "eth_getUncleCountByBlockNumber", q(beyond))
	opt("missing hash", "eth_getUncleCountByBlockHash", unknownHash)

	// Transactions and receipts.
	for i, tx := range f.txs {
		add(tx.kind, "eth_getTransactionByHash", tx.hash)
		add(tx.kind, "eth_getTransactionReceipt", tx.hash)
		if i%7 == 0 {
			add(tx.kind, "eth_getTransactionByBlockNumberAndIndex", q(tx.block), q(uint64(tx.index)))
			add(tx.kind, "eth_getTransactionByBlockHashAndIndex", f.blocks[tx.block].hash, q(uint64(tx.index)))
			opt(tx.kind, "eth_getRawTransactionByHash", tx.hash)
		}
	}
	// Traces: the first two of every kind (and of every envelope type).
	seen := make(map[string]int)
	for _, tx := range f.txs {
		key := fmt.Sprintf("%s/%d", tx.kind, tx.typ)
		if seen[key] >= 2 {
			continue
		}
		seen[key]++
		opt(tx.kind+" callTracer", "debug_traceTransaction", tx.hash, obj{"tracer": "callTracer"})
		opt(tx.kind+" callTracer withLog", "debug_traceTransaction", tx.hash, obj{"tracer": "callTracer", "tracerConfig": obj{"withLog": true}})
		if seen[key] == 1 {
			opt(tx.kind+" struct logger", "debug_traceTransaction", tx.hash)
			opt(tx.kind+" struct logger with memory", "debug_traceTransaction", tx.hash, obj{"enableMemory": true, "enableReturnData": true})
			opt(tx.kind+" prestateTracer", "debug_traceTransaction", tx.hash, obj{"tracer": "prestateTracer"})
		}
	}
	opt("missing", "debug_traceTransaction", unknownHash)
	opt("missing", "debug_traceTransaction", unknownHash, obj{"tracer": "callTracer"})
	opt("unknown tracer", "debug_traceTransaction", f.txs[0].hash, obj{"tracer": "noSuchTracer"})

	// Accounts and storage.
	addrs := []common.Address{s[0].addr, s[1].addr, s[5].addr, chain.DevAccounts()[9].Address, w.token, w.token2, w.reverter,
		w.destructor, w.logger, common.Address{}, common.BytesToAddress([]byte{4}), params.HistoryStorageAddress,
		params.BeaconRootsAddress, neverUsed}
	for _, a := range w.authorities {
		addrs = append(addrs, a.addr)
	}
	for i := 0; i < 3 && i < len(w.fresh); i++ {
		addrs = append(addrs, w.fresh[i])
	}
	type slotOf struct {
		addr common.Address
		key  common.Hash
	}
	slots := []slotOf{{w.token, common.Hash{}}, {w.token, common.BigToHash(big.NewInt(2))}, {w.token, balanceSlot(s[0].addr)},
		{w.token, balanceSlot(s[3].addr)}, {w.token2, balanceSlot(s[2].addr)}, {w.reverter, common.Hash{}}, {w.authorities[0].addr, common.Hash{}}}
	for _, tag := range tags {
		for _, a := range addrs {
			add("tag "+tag, "eth_getBalance", a, tag)
			add("tag "+tag, "eth_getTransactionCount", a, tag)
			add("tag "+tag, "eth_getCode", a, tag)
		}
		for _, sl := range slots {
			add("tag "+tag, "eth_getStorageAt", sl.addr, sl.key, tag)
		}
	}
	for _, a := range addrs[:4] {
		add("default block", "eth_getBalance", a)
		add("default block", "eth_getTransactionCount", a)
		add("default block", "eth_getCode", a)
	}
	if !short {
		every = 5
	}
	for n := uint64(0); n <= head; n += every {
		b := f.blocks[n]
		for i, a := range addrs {
			if (uint64(i)+n)%3 != 0 { // a third of the addresses at each sampled block
				continue
			}
			add("number", "eth_getBalance", a, q(n))
			add("EIP-1898 number", "eth_getTransactionCount", a, obj{"blockNumber": q(n)})
			add("EIP-1898 hash", "eth_getCode", a, obj{"blockHash": b.hash})
			add("EIP-1898 canonical hash", "eth_getBalance", a, obj{"blockHash": b.hash, "requireCanonical": true})
			add("block hash string", "eth_getTransactionCount", a, b.hash)
		}
		for _, sl := range slots {
			add("number", "eth_getStorageAt", sl.addr, sl.key, q(n))
		}
		if n > 0 {
			// The system contracts: EIP-2935 holds the parent hash, EIP-4788 the
			// timestamp (and the zero beacon root).
			add("EIP-2935 parent hash", "eth_getStorageAt", params.HistoryStorageAddress, common.BigToHash(new(big.Int).SetUint64((n-1)%8191)), q(n))
			add("EIP-4788 timestamp", "eth_getStorageAt", params.BeaconRootsAddress, common.BigToHash(new(big.Int).SetUint64(b.time%8191)), obj{"blockHash": b.hash})
		}
		add("ERC20 balanceOf", "eth_call", obj{"to": w.token, "data": hexutil.Bytes(contracts.ERC20BalanceOfData(s[1].addr))}, q(n))
	}
	// Storage key spellings.
	add("short key", "eth_getStorageAt", w.token, "0x2", "latest")
	add("no 0x key", "eth_getStorageAt", w.token, "02", "latest")
	add("key too long", "eth_getStorageAt", w.token, "0x"+strings.Repeat("00", 33), "latest")
	add("key not hex", "eth_getStorageAt", w.token, "0xzz", "latest")
	add("missing block", "eth_getStorageAt", w.token, "0x0")

	// Missing states and bad block parameters.
	add("beyond head", "eth_getBalance", s[0].addr, q(beyond))
	add("unknown hash", "eth_getBalance", s[0].addr, obj{"blockHash": unknownHash})
	add("unknown canonical hash", "eth_getCode", s[0].addr, obj{"blockHash": unknownHash, "requireCanonical": true})
	add("unknown hash string", "eth_getTransactionCount", s[0].addr, unknownHash)
	add("both number and hash", "eth_getBalance", s[0].addr, obj{"blockNumber": "0x1", "blockHash": f.blocks[1].hash})
	add("empty object", "eth_getBalance", s[0].addr, obj{})
	add("leading zero", "eth_getBalance", s[0].addr, "0x01")
	add("empty hex", "eth_getBalance", s[0].addr, "0x")
	add("no 0x", "eth_getBalance", s[0].addr, "1")
	add("unknown tag", "eth_getBalance", s[0].addr, "newest")
	add("number type", "eth_getBalance", s[0].addr, raw("1"))
	add("negative", "eth_getBalance", s[0].addr, raw("-1"))
	add("short address", "eth_getBalance", "0x123", "latest")
	add("address not hex", "eth_getBalance", "0x"+strings.Repeat("zz", 20), "latest")
	add("address without 0x", "eth_getBalance", strings.TrimPrefix(strings.ToLower(s[0].addr.Hex()), "0x"), "latest")
	add("checksummed address", "eth_getBalance", s[0].addr.Hex(), "latest")
	add("address type", "eth_getBalance", raw("42"), "latest")
	add("missing params", "eth_getBalance")
	add("too many params", "eth_getBalance", s[0].addr, "latest", "extra")
	add("missing bool", "eth_getBlockByNumber", "0x1")
	add("bool as string", "eth_getBlockByNumber", "0x1", "true")
	add("number as bool", "eth_getBlockByNumber", true, false)
	add("short hash", "eth_getBlockByHash", "0x1234", false)
	add("short hash", "eth_getTransactionByHash", "0x12")
	add("hash type", "eth_getTransactionReceipt", raw("12"))
	add("empty index", "eth_getTransactionByBlockNumberAndIndex", "0x1", "0x")
	add("index type", "eth_getTransactionByBlockNumberAndIndex", "0x1", raw("0"))
	add("block number object", "eth_getBlockByNumber", obj{"blockNumber": "0x1"}, false)

	// Proofs: account proofs, storage proofs, at tags, numbers and hashes.
	for _, a := range addrs {
		add("account", "eth_getProof", a, []any{}, "latest")
	}
	keys := []common.Hash{{}, common.BigToHash(big.NewInt(2)), balanceSlot(s[0].addr), balanceSlot(s[4].addr), balanceSlot(neverUsed)}
	add("storage", "eth_getProof", w.token, keys, "latest")
	add("storage", "eth_getProof", w.reverter, []common.Hash{{}}, "latest")
	add("storage of an account without storage", "eth_getProof", s[0].addr, []common.Hash{{}}, "latest")
	add("storage of a missing account", "eth_getProof", neverUsed, []common.Hash{{}, {1}}, "latest")
	add("short keys", "eth_getProof", w.token, []string{"0x0", "0x2", "0x02"}, "latest")
	add("key too long", "eth_getProof", w.token, []string{"0x" + strings.Repeat("11", 33)}, "latest")
	add("earliest", "eth_getProof", s[0].addr, []any{}, "earliest")
	add("pending", "eth_getProof", s[0].addr, []any{}, "pending")
	for n := uint64(1); n <= head; n += max(1, head/8) {
		add("number", "eth_getProof", w.token, keys[:3], q(n))
		add("hash object", "eth_getProof", s[n%9].addr, []any{}, obj{"blockHash": f.blocks[n].hash})
		add("history contract", "eth_getProof", params.HistoryStorageAddress, []common.Hash{common.BigToHash(new(big.Int).SetUint64((n - 1) % 8191))}, q(n))
	}
	add("beyond head", "eth_getProof", s[0].addr, []any{}, q(beyond))
	add("bad address", "eth_getProof", "0x12", []any{}, "latest")
	add("keys not a list", "eth_getProof", s[0].addr, "0x0", "latest")
	add("missing keys", "eth_getProof", s[0].addr)

	// eth_call.
	bal := hexutil.Bytes(contracts.ERC20BalanceOfData(s[0].addr))
	for _, tag := range tags {
		add("ERC20 balanceOf at "+tag, "eth_call", obj{"to": w.token, "data": bal}, tag)
	}
	add("ERC20 balanceOf at hash", "eth_call", obj{"to": w.token, "data": bal}, obj{"blockHash": f.blocks[head].hash})
	add("ERC20 balanceOf default block", "eth_call", obj{"to": w.token, "data": bal})
	add("ERC20 totalSupply", "eth_call", obj{"to": w.token, "input": hexutil.Bytes(contracts.ERC20TotalSupplyData())}, "latest")
	add("ERC20 transfer from holder", "eth_call", obj{"from": s[1].addr, "to": w.token, "data": hexutil.Bytes(contracts.ERC20TransferData(s[2].addr, big.NewInt(1)))}, "latest")
	add("ERC20 transfer exceeding balance", "eth_call", obj{"from": neverUsed, "to": w.token, "data": hexutil.Bytes(contracts.ERC20TransferData(s[2].addr, big.NewInt(1)))}, "latest")
	add("revert with reason", "eth_call", obj{"to": w.reverter, "data": hexutil.Bytes(contracts.ReverterRevertWithReasonData())}, "latest")
	add("revert with custom error", "eth_call", obj{"from": s[0].addr, "to": w.reverter, "data": hexutil.Bytes(contracts.ReverterRevertWithCustomErrorData())}, "latest")
	add("require false", "eth_call", obj{"to": w.reverter, "data": hexutil.Bytes(contracts.ReverterRequireTrueData(false))}, "latest")
	add("require true", "eth_call", obj{"to": w.reverter, "data": hexutil.Bytes(contracts.ReverterRequireTrueData(true))}, "latest")
	add("out of gas", "eth_call", obj{"to": w.reverter, "gas": "0x5dc0", "data": hexutil.Bytes(contracts.ReverterStoreData(big.NewInt(1), nil))}, "latest")
	add("intrinsic gas too low", "eth_call", obj{"to": w.reverter, "gas": "0x100", "data": hexutil.Bytes(contracts.ReverterValueData())}, "latest")
	add("gas above the cap", "eth_call", obj{"to": w.reverter, "gas": "0xffffffffffff", "data": hexutil.Bytes(contracts.ReverterValueData())}, "latest")
	add("value without funds", "eth_call", obj{"from": neverUsed, "to": s[0].addr, "value": "0x1"}, "latest")
	add("value with funds", "eth_call", obj{"from": s[0].addr, "to": s[1].addr, "value": "0xde0b6b3a7640000"}, "latest")
	add("creation", "eth_call", obj{"from": s[0].addr, "data": hexutil.Bytes(initCode(loggerCode))}, "latest")
	add("reverting creation", "eth_call", obj{"data": hexutil.Bytes(revertingInit)}, "latest")
	add("call to an EOA", "eth_call", obj{"to": s[1].addr, "data": "0xdeadbeef"}, "latest")
	add("call to a delegated EOA", "eth_call", obj{"to": w.authorities[0].addr, "data": hexutil.Bytes(contracts.ReverterValueData())}, "latest")
	add("call from a contract", "eth_call", obj{"from": w.token, "to": s[1].addr, "value": "0x0"}, "latest")
	add("fee cap below base fee", "eth_call", obj{"from": s[0].addr, "to": s[1].addr, "maxFeePerGas": "0x1"}, "latest")
	add("tip above fee cap", "eth_call", obj{"from": s[0].addr, "to": s[1].addr, "maxFeePerGas": "0x3b9aca00", "maxPriorityFeePerGas": "0x77359400"}, "latest")
	add("gasPrice and maxFeePerGas", "eth_call", obj{"to": s[1].addr, "gasPrice": "0x1", "maxFeePerGas": "0x1"}, "latest")
	add("gasPrice", "eth_call", obj{"from": s[0].addr, "to": w.token, "gasPrice": "0x3b9aca00", "data": bal}, "latest")
	add("data and input differ", "eth_call", obj{"to": w.token, "data": "0x01", "input": "0x02"}, "latest")
	add("unknown field", "eth_call", obj{"to": w.token, "data": bal, "colour": "blue"}, "latest")
	add("blob fields", "eth_call", obj{"to": w.token, "data": bal, "blobVersionedHashes": []string{}}, "latest")
	add("access list", "eth_call", obj{"to": w.token, "data": bal, "accessList": []any{obj{"address": w.token, "storageKeys": []common.Hash{{}}}}}, "latest")
	add("nonce", "eth_call", obj{"from": s[0].addr, "to": w.token, "data": bal, "nonce": "0x0"}, "latest")
	add("state override balance", "eth_call", obj{"from": neverUsed, "to": s[0].addr, "value": "0x1"}, "latest", obj{neverUsed.Hex(): obj{"balance": "0xde0b6b3a7640000"}})
	add("state override storage", "eth_call", obj{"to": w.reverter, "data": hexutil.Bytes(contracts.ReverterValueData())}, "latest",
		obj{w.reverter.Hex(): obj{"stateDiff": obj{common.Hash{}.Hex(): common.BigToHash(big.NewInt(42)).Hex()}}})
	add("state override code", "eth_call", obj{"to": neverUsed, "data": hexutil.Bytes(contracts.ReverterValueData())}, "latest",
		obj{neverUsed.Hex(): obj{"code": hexutil.Bytes(contracts.Reverter().DeployedBytecode)}})
	add("block override", "eth_call", obj{"to": w.logger, "data": hexutil.Bytes(common.Hash{1}.Bytes())}, "latest", obj{}, obj{"number": "0x1000", "time": "0x70000000"})
	add("beyond head", "eth_call", obj{"to": w.token, "data": bal}, q(beyond))
	add("unknown hash", "eth_call", obj{"to": w.token, "data": bal}, obj{"blockHash": unknownHash})
	add("earliest", "eth_call", obj{"to": w.token, "data": bal}, "earliest")
	add("missing params", "eth_call")
	add("not an object", "eth_call", "0x1234", "latest")
	add("bad to", "eth_call", obj{"to": "0x1234"}, "latest")

	// eth_estimateGas.
	add("transfer", "eth_estimateGas", obj{"from": s[0].addr, "to": s[1].addr, "value": "0x1"})
	add("transfer to a new account", "eth_estimateGas", obj{"from": s[0].addr, "to": neverUsed, "value": "0x1"}, "latest")
	add("ERC20 transfer", "eth_estimateGas", obj{"from": s[1].addr, "to": w.token, "data": hexutil.Bytes(contracts.ERC20TransferData(s[2].addr, big.NewInt(5)))}, "latest")
	add("Reverter.store", "eth_estimateGas", obj{"from": s[1].addr, "to": w.reverter, "data": hexutil.Bytes(contracts.ReverterStoreData(big.NewInt(5), []byte("abc")))}, "latest")
	add("revert with reason", "eth_estimateGas", obj{"from": s[1].addr, "to": w.reverter, "data": hexutil.Bytes(contracts.ReverterRevertWithReasonData())}, "latest")
	add("revert with custom error", "eth_estimateGas", obj{"to": w.reverter, "data": hexutil.Bytes(contracts.ReverterRevertWithCustomErrorData())}, "latest")
	add("creation", "eth_estimateGas", obj{"from": s[0].addr, "data": hexutil.Bytes(initCode(loggerCode))}, "latest")
	add("ERC20 deployment", "eth_estimateGas", obj{"from": s[0].addr, "data": hexutil.Bytes(mustDeployData())}, "latest")
	add("value without funds", "eth_estimateGas", obj{"from": neverUsed, "to": s[0].addr, "value": "0x1"}, "latest")
	add("gas too low", "eth_estimateGas", obj{"from": s[1].addr, "to": w.reverter, "gas": "0x5208", "data": hexutil.Bytes(contracts.ReverterStoreData(big.NewInt(5), nil))}, "latest")
	add("delegated EOA", "eth_estimateGas", obj{"from": s[1].addr, "to": w.authorities[0].addr, "data": hexutil.Bytes(contracts.ReverterStoreData(big.NewInt(5), nil))}, "latest")
	add("at a block", "eth_estimateGas", obj{"from": s[1].addr, "to": w.token, "data": hexutil.Bytes(contracts.ERC20TransferData(s[2].addr, big.NewInt(5)))}, q(head/2))
	add("at a hash", "eth_estimateGas", obj{"from": s[1].addr, "to": s[2].addr, "value": "0x5"}, obj{"blockHash": f.blocks[head].hash})
	add("state override", "eth_estimateGas", obj{"from": neverUsed, "to": s[0].addr, "value": "0x1"}, "latest", obj{neverUsed.Hex(): obj{"balance": "0xde0b6b3a7640000"}})
	add("missing params", "eth_estimateGas")

	// eth_createAccessList, where served.
	opt("ERC20 transfer", "eth_createAccessList", obj{"from": s[1].addr, "to": w.token, "data": hexutil.Bytes(contracts.ERC20TransferData(s[2].addr, big.NewInt(5)))}, "latest")
	opt("transfer", "eth_createAccessList", obj{"from": s[0].addr, "to": s[1].addr, "value": "0x1"})
	opt("revert", "eth_createAccessList", obj{"from": s[0].addr, "to": w.reverter, "data": hexutil.Bytes(contracts.ReverterRevertWithReasonData())}, "latest")
	opt("at a block", "eth_createAccessList", obj{"from": s[1].addr, "to": w.token, "data": hexutil.Bytes(contracts.ERC20TransferData(s[2].addr, big.NewInt(5)))}, q(head/2))
	opt("creation", "eth_createAccessList", obj{"from": s[0].addr, "data": hexutil.Bytes(initCode(loggerCode))}, "latest")
	opt("callTracer", "debug_traceCall", obj{"from": s[1].addr, "to": w.token, "data": hexutil.Bytes(contracts.ERC20TransferData(s[2].addr, big.NewInt(5)))}, "latest", obj{"tracer": "callTracer"})
	opt("callTracer", "debug_traceBlockByNumber", q(f.txs[len(f.txs)-1].block), obj{"tracer": "callTracer"})
	opt("callTracer", "debug_traceBlockByHash", f.blocks[f.txs[0].block].hash, obj{"tracer": "callTracer"})

	// eth_feeHistory.
	add("latest", "eth_feeHistory", "0x4", "latest", []int{25, 75})
	add("middle", "eth_feeHistory", "0xa", q(head/2), []float64{0, 10.5, 50, 100})
	add("no percentiles", "eth_feeHistory", "0x3", "latest", []int{})
	add("null percentiles", "eth_feeHistory", "0x3", "latest", nil)
	add("omitted percentiles", "eth_feeHistory", "0x3", "latest")
	add("whole chain", "eth_feeHistory", q(head+5), "latest", []int{50})
	add("earliest", "eth_feeHistory", "0x1", "earliest", []int{50})
	add("pending", "eth_feeHistory", "0x2", "pending", []int{50})
	add("safe", "eth_feeHistory", "0x2", "safe", []int{50})
	add("count as number", "eth_feeHistory", raw("4"), "latest", []int{50})
	add("count as decimal string", "eth_feeHistory", "4", "latest", []int{50})
	add("zero count", "eth_feeHistory", "0x0", "latest", []int{50})
	add("beyond head", "eth_feeHistory", "0x2", q(beyond), []int{50})
	add("decreasing percentiles", "eth_feeHistory", "0x2", "latest", []int{75, 25})
	add("percentile above 100", "eth_feeHistory", "0x2", "latest", []int{101})
	add("missing params", "eth_feeHistory")
	for n := uint64(1); n <= head; n += max(1, head/6) {
		add("per block", "eth_feeHistory", "0x2", q(n), []int{0, 50, 100})
	}

	// eth_getLogs over ranges and filters.
	transfer := contracts.ERC20TransferTopic
	approval := contracts.ERC20ApprovalTopic
	stored := contracts.ReverterValueStoredTopic
	pad := func(a common.Address) common.Hash { return common.BytesToHash(a[:]) }
	add("whole chain", "eth_getLogs", obj{"fromBlock": "earliest", "toBlock": "latest"})
	add("whole chain by numbers", "eth_getLogs", obj{"fromBlock": "0x0", "toBlock": q(head)})
	add("address", "eth_getLogs", obj{"fromBlock": "0x0", "address": w.token})
	add("two addresses", "eth_getLogs", obj{"fromBlock": "0x1", "toBlock": "latest", "address": []common.Address{w.token2, w.reverter}})
	add("topic0", "eth_getLogs", obj{"fromBlock": "0x0", "topics": []any{transfer}})
	add("topic0 alternatives", "eth_getLogs", obj{"fromBlock": "0x0", "topics": []any{[]common.Hash{transfer, approval}}})
	add("topic1", "eth_getLogs", obj{"fromBlock": "0x0", "topics": []any{nil, pad(s[0].addr)}})
	add("topic2 with address", "eth_getLogs", obj{"fromBlock": "0x0", "address": w.token2, "topics": []any{transfer, nil, pad(s[3].addr)}})
	add("Reverter and delegated EOAs", "eth_getLogs", obj{"fromBlock": "0x0", "topics": []any{stored}})
	add("logger", "eth_getLogs", obj{"fromBlock": "0x0", "address": w.logger})
	add("empty topic alternatives", "eth_getLogs", obj{"fromBlock": "0x0", "topics": []any{[]any{}}})
	add("no match", "eth_getLogs", obj{"fromBlock": "0x0", "topics": []any{unknownHash}})
	add("second half", "eth_getLogs", obj{"fromBlock": q(head / 2)})
	add("default range", "eth_getLogs", obj{})
	add("safe to finalized", "eth_getLogs", obj{"fromBlock": "safe", "toBlock": "finalized"})
	add("pending", "eth_getLogs", obj{"fromBlock": "pending", "toBlock": "pending"})
	add("latest to pending", "eth_getLogs", obj{"fromBlock": "latest", "toBlock": "pending"})
	add("reversed range", "eth_getLogs", obj{"fromBlock": q(head), "toBlock": q(head - 1)})
	add("from beyond head", "eth_getLogs", obj{"fromBlock": q(beyond), "toBlock": q(beyond + 10)})
	add("to beyond head", "eth_getLogs", obj{"fromBlock": q(head - 1), "toBlock": q(beyond)})
	add("earliest to earliest", "eth_getLogs", obj{"fromBlock": "earliest", "toBlock": "earliest"})
	add("to earliest", "eth_getLogs", obj{"toBlock": "earliest"})
	add("unknown block hash", "eth_getLogs", obj{"blockHash": unknownHash})
	add("block hash and range", "eth_getLogs", obj{"blockHash": f.blocks[1].hash, "fromBlock": "0x1"})
	add("bad address", "eth_getLogs", obj{"address": "0x12"})
	add("bad topic", "eth_getLogs", obj{"topics": []any{"0x12"}})
	add("five topics", "eth_getLogs", obj{"fromBlock": "0x0", "topics": []any{nil, nil, nil, nil, transfer}})
	add("not an object", "eth_getLogs", "latest")
	add("missing params", "eth_getLogs")

	// Malformed requests and envelopes.
	addRaw("no params member", "eth_getBalance", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance"}`)
	addRaw("unknown method", "eth_nonexistent", `{"jsonrpc":"2.0","id":1,"method":"eth_nonexistent","params":[]}`)
	addRaw("params object", "eth_chainId", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":{}}`)
	addRaw("params null", "eth_chainId", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":null}`)
	addRaw("string id", "eth_chainId", `{"jsonrpc":"2.0","id":"abc","method":"eth_chainId","params":[]}`)
	addRaw("big id", "eth_chainId", `{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"eth_chainId","params":[]}`)
	addRaw("null id", "eth_chainId", `{"jsonrpc":"2.0","id":null,"method":"eth_chainId","params":[]}`)
	addRaw("notification", "eth_chainId", `{"jsonrpc":"2.0","method":"eth_chainId","params":[]}`)
	addRaw("version 1.0", "eth_chainId", `{"jsonrpc":"1.0","id":1,"method":"eth_chainId","params":[]}`)
	addRaw("no version", "eth_chainId", `{"id":1,"method":"eth_chainId","params":[]}`)
	addRaw("no method", "(none)", `{"jsonrpc":"2.0","id":1,"params":[]}`)
	addRaw("method not a string", "(none)", `{"jsonrpc":"2.0","id":1,"method":42,"params":[]}`)
	addRaw("truncated", "(parse)", `{"jsonrpc":"2.0","id":1,"method":`)
	addRaw("not an object", "(parse)", `"hello"`)
	addRaw("empty batch", "(batch)", `[]`)
	addRaw("batch", "(batch)", `[{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]},{"jsonrpc":"2.0","id":2,"method":"eth_getBalance","params":["0x12"]},{"jsonrpc":"2.0","id":3,"method":"eth_nope","params":[]},{"jsonrpc":"2.0","method":"eth_chainId","params":[]},{"jsonrpc":"2.0","id":4,"method":"eth_blockNumber"}]`)
	addRaw("batch of junk", "(batch)", `[1,"a",null]`)
	addRaw("subscribe over HTTP", "eth_subscribe", `{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}`)
	return rs
}

func uint256FromBig(b *big.Int) *uint256.Int { return uint256.MustFromBig(b) }

func mustDeployData() []byte {
	d, err := contracts.ERC20DeployData("Estimate", "EST", big.NewInt(1000))
	if err != nil {
		panic(err)
	}
	return d
}

// sendBattery compares eth_sendRawTransaction's and
// eth_sendRawTransactionSync's answers to transactions both nodes must refuse
// (each refusal reason once). Every one must be invalid on both nodes: one
// that a node accepts changes its state (and the other probes' answers). It
// runs last for the same reason.
func sendBattery(f *chainFacts, w *workload) []request {
	var rs []request
	add := func(name, method string, params ...any) {
		rs = append(rs, request{name: name, method: method, params: params})
	}
	s0 := w.senders[0]
	signer := w.signer
	sign := func(key *sender, inner types.TxData) hexutil.Bytes {
		tx, err := types.SignNewTx(key.key, signer, inner)
		if err != nil {
			panic(err)
		}
		b, _ := tx.MarshalBinary()
		return b
	}
	to := w.senders[1].addr
	gwei := big.NewInt(params.GWei)
	// An included transaction, sent again.
	first := hexutil.Bytes(w.raw[f.txs[0].hash])
	add("already included", "eth_sendRawTransaction", first)
	add("nonce too low", "eth_sendRawTransaction", sign(s0, &types.LegacyTx{Nonce: 0, GasPrice: gwei, Gas: 21_000, To: &to, Value: big.NewInt(1)}))
	add("intrinsic gas too low", "eth_sendRawTransaction", sign(s0, &types.DynamicFeeTx{ChainID: w.chainID, Nonce: s0.nonce, GasTipCap: gwei, GasFeeCap: gwei, Gas: 20_000, To: &to}))
	add("gas above the block gas limit", "eth_sendRawTransaction", sign(s0, &types.DynamicFeeTx{ChainID: w.chainID, Nonce: s0.nonce, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1000), Gas: f.gasLimit + 1, To: &to}))
	if f.osaka { // EIP-7825; before Osaka such a transaction is valid
		add("gas above the transaction gas cap", "eth_sendRawTransaction", sign(s0, &types.DynamicFeeTx{ChainID: w.chainID, Nonce: s0.nonce, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1000), Gas: params.MaxTxGas + 1, To: &to}))
	}
	add("tip above fee cap", "eth_sendRawTransaction", sign(s0, &types.DynamicFeeTx{ChainID: w.chainID, Nonce: s0.nonce, GasTipCap: big.NewInt(2 * params.GWei), GasFeeCap: gwei, Gas: 21_000, To: &to}))
	pauperKey, err := crypto.ToECDSA(crypto.Keccak256([]byte("kestrel/conformance/pauper")))
	if err != nil {
		panic(err)
	}
	pauper := &sender{key: pauperKey, addr: crypto.PubkeyToAddress(pauperKey.PublicKey)}
	add("insufficient funds", "eth_sendRawTransaction", sign(pauper, &types.DynamicFeeTx{ChainID: w.chainID, Nonce: 0, GasTipCap: gwei, GasFeeCap: gwei, Gas: 21_000, To: &to}))
	wrong, err := types.SignNewTx(s0.key, types.LatestSignerForChainID(big.NewInt(1)), &types.DynamicFeeTx{ChainID: big.NewInt(1), Nonce: s0.nonce, GasTipCap: gwei, GasFeeCap: gwei, Gas: 21_000, To: &to})
	if err != nil {
		panic(err)
	}
	wb, _ := wrong.MarshalBinary()
	add("wrong chain id", "eth_sendRawTransaction", hexutil.Bytes(wb))
	unprotected, err := types.SignNewTx(s0.key, types.HomesteadSigner{}, &types.LegacyTx{Nonce: s0.nonce, GasPrice: gwei, Gas: 21_000, To: &to})
	if err != nil {
		panic(err)
	}
	ub, _ := unprotected.MarshalBinary()
	add("unprotected legacy", "eth_sendRawTransaction", hexutil.Bytes(ub))
	add("oversized", "eth_sendRawTransaction", sign(s0, &types.DynamicFeeTx{ChainID: w.chainID, Nonce: s0.nonce, GasTipCap: gwei, GasFeeCap: gwei, Gas: 10_000_000, To: &to, Data: make([]byte, 140_000)}))
	add("blob transaction without blobs", "eth_sendRawTransaction", sign(s0, &types.BlobTx{ChainID: uint256FromBig(w.chainID), Nonce: s0.nonce, GasTipCap: uint256FromBig(gwei), GasFeeCap: uint256FromBig(gwei),
		Gas: 21_000, To: to, BlobFeeCap: uint256FromBig(gwei), BlobHashes: []common.Hash{{1}}}))
	add("empty set-code list", "eth_sendRawTransaction", sign(s0, &types.SetCodeTx{ChainID: uint256FromBig(w.chainID), Nonce: s0.nonce, GasTipCap: uint256FromBig(gwei), GasFeeCap: uint256FromBig(gwei), Gas: 50_000, To: to}))
	add("not RLP", "eth_sendRawTransaction", "0x1234")
	add("unknown type", "eth_sendRawTransaction", "0x7f01")
	add("empty", "eth_sendRawTransaction", "0x")
	add("not hex", "eth_sendRawTransaction", "hello")
	add("missing params", "eth_sendRawTransaction")
	add("already included", "eth_sendRawTransactionSync", first)
	add("not RLP", "eth_sendRawTransactionSync", "0x1234")
	return rs
}
