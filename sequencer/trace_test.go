package sequencer_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core"
	gethstate "github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/tracers"
	"github.com/ethereum/go-ethereum/eth/tracers/logger"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/contracts"
	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/sequencer"
)

// tracedCallFrame is the part of the callTracer's answer the tests read.
type tracedCallFrame struct {
	Type         string            `json:"type"`
	From         common.Address    `json:"from"`
	To           *common.Address   `json:"to"`
	Gas          hexutil.Uint64    `json:"gas"`
	GasUsed      hexutil.Uint64    `json:"gasUsed"`
	Input        hexutil.Bytes     `json:"input"`
	Output       hexutil.Bytes     `json:"output"`
	Value        *hexutil.Big      `json:"value"`
	Error        string            `json:"error"`
	RevertReason string            `json:"revertReason"`
	Calls        []tracedCallFrame `json:"calls"`
	Logs         []struct {
		Address  common.Address `json:"address"`
		Topics   []common.Hash  `json:"topics"`
		Data     hexutil.Bytes  `json:"data"`
		Index    hexutil.Uint   `json:"index"`
		Position hexutil.Uint   `json:"position"`
	} `json:"logs"`
}

// tracedStructLogs is the struct logger's answer.
type tracedStructLogs struct {
	Gas         uint64        `json:"gas"`
	Failed      bool          `json:"failed"`
	ReturnValue hexutil.Bytes `json:"returnValue"`
	StructLogs  []struct {
		Pc      uint64            `json:"pc"`
		Op      string            `json:"op"`
		Gas     uint64            `json:"gas"`
		GasCost uint64            `json:"gasCost"`
		Depth   int               `json:"depth"`
		Stack   []string          `json:"stack"`
		Memory  []string          `json:"memory"`
		Storage map[string]string `json:"storage"`
	} `json:"structLogs"`
}

type createdAccessList struct {
	AccessList types.AccessList `json:"accessList"`
	GasUsed    hexutil.Uint64   `json:"gasUsed"`
	Error      string           `json:"error"`
}

func debugTrace(t *testing.T, rc *gethrpc.Client, h common.Hash, cfg any, out any) error {
	t.Helper()
	var raw json.RawMessage
	if err := rc.CallContext(context.Background(), &raw, "debug_traceTransaction", h, cfg); err != nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("trace of %s: %v in %s", h, err, raw)
	}
	return nil
}

// balanceSlot is the ERC20's balanceOf[addr] slot (balanceOf is the fourth state
// variable).
func balanceSlot(addr common.Address) common.Hash {
	return crypto.Keccak256Hash(common.LeftPadBytes(addr[:], 32), common.LeftPadBytes([]byte{3}, 32))
}

func TestCreateAccessListAndTrace(t *testing.T) {
	_, ec, rc := startSequencer(t, t.TempDir(), func(c *sequencer.Config) { c.BlockInterval = time.Second })
	ctx := context.Background()
	alice, bob, carol := devWallet(0), devWallet(1), devWallet(2)

	supply := new(big.Int).Mul(big.NewInt(1_000_000), big.NewInt(1e18))
	deploy, err := contracts.ERC20DeployData("Trace Token", "TRC", supply)
	if err != nil {
		t.Fatal(err)
	}
	deployTx := alice.dynamic(t, nil, nil, 2_000_000, deploy)
	dr, err := ec.SendTransactionSync(ctx, deployTx, nil)
	if err != nil || dr.Status != 1 {
		t.Fatalf("deploy: %v %+v", err, dr)
	}
	token := dr.ContractAddress

	// eth_createAccessList finds both balance slots of a transfer; the sender and
	// the token stay out as addresses, the token's slots are listed.
	xfer := contracts.ERC20TransferData(bob.addr, big.NewInt(777))
	var acl createdAccessList
	if err := rc.CallContext(ctx, &acl, "eth_createAccessList", map[string]any{"from": alice.addr, "to": token, "input": hexutil.Bytes(xfer)}, "pending"); err != nil {
		t.Fatalf("createAccessList: %v", err)
	}
	k1, k2 := balanceSlot(alice.addr), balanceSlot(bob.addr)
	if k2.Cmp(k1) < 0 {
		k1, k2 = k2, k1
	}
	if len(acl.AccessList) != 1 || acl.AccessList[0].Address != token || len(acl.AccessList[0].StorageKeys) != 2 ||
		acl.AccessList[0].StorageKeys[0] != k1 || acl.AccessList[0].StorageKeys[1] != k2 || acl.Error != "" {
		t.Fatalf("access list %+v", acl)
	}
	// The transfer sent with that list uses the gas the list creation reported.
	alTx := alice.sign(t, &types.DynamicFeeTx{ChainID: chainID, Nonce: alice.nonce, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(1e10),
		Gas: 200_000, To: &token, Data: xfer, AccessList: acl.AccessList})
	ar, err := ec.SendTransactionSync(ctx, alTx, nil)
	if err != nil || ar.Status != 1 || ar.GasUsed != uint64(acl.GasUsed) {
		t.Fatalf("transfer with access list: %v gas %d, createAccessList said %d", err, ar.GasUsed, acl.GasUsed)
	}
	// A reverting call still lists what it touched and reports the failure.
	acl = createdAccessList{}
	if err := rc.CallContext(ctx, &acl, "eth_createAccessList", map[string]any{"from": carol.addr, "to": token, "input": hexutil.Bytes(xfer)}, "pending"); err != nil {
		t.Fatalf("createAccessList of a revert: %v", err)
	}
	if acl.Error != "execution reverted" || len(acl.AccessList) != 1 || len(acl.AccessList[0].StorageKeys) != 1 ||
		acl.AccessList[0].StorageKeys[0] != balanceSlot(carol.addr) {
		t.Fatalf("reverting access list %+v", acl)
	}
	// A sender that cannot pay for the default fees is refused as go-ethereum does.
	poor := common.Address{0x99}
	err = rc.CallContext(ctx, &acl, "eth_createAccessList", map[string]any{"from": poor, "to": token, "input": hexutil.Bytes(xfer)})
	if err == nil || !strings.HasPrefix(err.Error(), "failed to apply transaction: 0x") || !strings.Contains(err.Error(), "insufficient funds for gas * price + value") {
		t.Fatalf("poor sender: %v", err)
	}

	// Two transfers from one sender in one mini-block, then a third in a later
	// mini-block of the same block: each is traced on the state the earlier
	// ones left.
	tx1 := alice.dynamic(t, &token, nil, 100_000, contracts.ERC20TransferData(bob.addr, big.NewInt(100)))
	tx2 := alice.dynamic(t, &token, nil, 100_000, contracts.ERC20TransferData(carol.addr, big.NewInt(200)))
	raw1, _ := tx1.MarshalBinary()
	raw2, _ := tx2.MarshalBinary()
	batch := []gethrpc.BatchElem{
		{Method: "eth_sendRawTransaction", Args: []any{hexutil.Bytes(raw1)}, Result: new(common.Hash)},
		{Method: "eth_sendRawTransaction", Args: []any{hexutil.Bytes(raw2)}, Result: new(common.Hash)},
	}
	if err := rc.BatchCallContext(ctx, batch); err != nil || batch[0].Error != nil || batch[1].Error != nil {
		t.Fatalf("batch send: %v %v %v", err, batch[0].Error, batch[1].Error)
	}
	// Once the pair is in a mini-block, the third goes into a later one.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, pending, err := ec.TransactionByHash(ctx, tx2.Hash()); err == nil && !pending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("batched transfers not included")
		}
	}
	tx3 := alice.dynamic(t, &token, nil, 100_000, contracts.ERC20TransferData(carol.addr, supply)) // reverts: alice has less now
	if err := ec.SendTransaction(ctx, tx3); err != nil {
		t.Fatal(err)
	}
	r1, r2, r3 := waitReceipt(t, ec, tx1.Hash()), waitReceipt(t, ec, tx2.Hash()), waitReceipt(t, ec, tx3.Hash())
	if r1.Status != 1 || r2.Status != 1 || r3.Status != 0 {
		t.Fatalf("statuses %d %d %d", r1.Status, r2.Status, r3.Status)
	}
	if r1.BlockNumber.Cmp(r2.BlockNumber) != 0 || r2.TransactionIndex != r1.TransactionIndex+1 {
		t.Fatalf("batched transfers in blocks %v/%v at %d/%d", r1.BlockNumber, r2.BlockNumber, r1.TransactionIndex, r2.TransactionIndex)
	}
	if r3.BlockNumber.Cmp(r2.BlockNumber) != 0 {
		t.Logf("third transfer landed in block %v, not %v: the later-mini-block case is not covered this run", r3.BlockNumber, r2.BlockNumber)
	}

	for _, c := range []struct {
		tx *types.Transaction
		r  *types.Receipt
		to common.Address
	}{{tx1, r1, bob.addr}, {tx2, r2, carol.addr}} {
		var top tracedCallFrame
		if err := debugTrace(t, rc, c.tx.Hash(), map[string]any{"tracer": "callTracer", "tracerConfig": map[string]any{"withLog": true}}, &top); err != nil {
			t.Fatalf("callTracer: %v", err)
		}
		if top.Type != "CALL" || top.From != alice.addr || top.To == nil || *top.To != token || uint64(top.GasUsed) != c.r.GasUsed ||
			uint64(top.Gas) != c.tx.Gas() || !bytesEqual(top.Input, c.tx.Data()) || common.BytesToHash(top.Output) != common.BigToHash(big.NewInt(1)) ||
			top.Value == nil || top.Value.ToInt().Sign() != 0 || top.Error != "" || len(top.Calls) != 0 {
			t.Fatalf("call frame of %s: %+v (receipt gas %d)", c.tx.Hash(), top, c.r.GasUsed)
		}
		if len(top.Logs) != 1 || len(c.r.Logs) != 1 || uint(top.Logs[0].Index) != c.r.Logs[0].Index || top.Logs[0].Address != token ||
			top.Logs[0].Topics[2] != common.BytesToHash(c.to[:]) {
			t.Fatalf("call frame logs %+v, receipt logs %+v", top.Logs, c.r.Logs)
		}
		var st tracedStructLogs
		if err := debugTrace(t, rc, c.tx.Hash(), nil, &st); err != nil {
			t.Fatalf("struct logger: %v", err)
		}
		if st.Gas != c.r.GasUsed || st.Failed || len(st.StructLogs) < 50 || st.StructLogs[0].Op != "PUSH1" || st.StructLogs[0].Gas == 0 {
			t.Fatalf("struct trace of %s: gas %d failed %v, %d logs (receipt gas %d)", c.tx.Hash(), st.Gas, st.Failed, len(st.StructLogs), c.r.GasUsed)
		}
		sstores := 0
		for _, l := range st.StructLogs {
			if l.Op == "SSTORE" {
				sstores++
				if len(l.Storage) == 0 || len(l.Stack) < 2 {
					t.Fatalf("SSTORE without storage or stack: %+v", l)
				}
			}
		}
		if sstores != 2 {
			t.Fatalf("%d SSTOREs in a transfer", sstores)
		}
	}

	// Struct logger options.
	var st tracedStructLogs
	if err := debugTrace(t, rc, tx2.Hash(), map[string]any{"disableStack": true, "disableStorage": true, "enableMemory": true}, &st); err != nil {
		t.Fatal(err)
	}
	mem := false
	for _, l := range st.StructLogs {
		if l.Stack != nil || l.Storage != nil {
			t.Fatalf("stack or storage despite disable: %+v", l)
		}
		mem = mem || len(l.Memory) > 0
	}
	if !mem {
		t.Fatal("no memory with enableMemory")
	}
	var limited tracedStructLogs
	if err := debugTrace(t, rc, tx2.Hash(), map[string]any{"limit": 1}, &limited); err != nil {
		t.Fatal(err)
	}
	if len(limited.StructLogs) == 0 || len(limited.StructLogs) >= len(st.StructLogs) || limited.Gas != r2.GasUsed {
		t.Fatalf("limit 1: %d logs of %d", len(limited.StructLogs), len(st.StructLogs))
	}

	// The reverted transfer: failed, revert reason, gas of the receipt.
	if err := debugTrace(t, rc, tx3.Hash(), map[string]any{}, &st); err != nil {
		t.Fatal(err)
	}
	if !st.Failed || st.Gas != r3.GasUsed || len(st.ReturnValue) == 0 {
		t.Fatalf("reverted struct trace: failed %v gas %d (receipt %d)", st.Failed, st.Gas, r3.GasUsed)
	}
	var rev tracedCallFrame
	if err := debugTrace(t, rc, tx3.Hash(), map[string]any{"tracer": "callTracer", "tracerConfig": map[string]any{"onlyTopCall": true, "withLog": true}}, &rev); err != nil {
		t.Fatal(err)
	}
	if rev.Error != "execution reverted" || rev.RevertReason != contracts.ERC20ErrInsufficientBalance || uint64(rev.GasUsed) != r3.GasUsed || len(rev.Logs) != 0 {
		t.Fatalf("reverted call frame %+v", rev)
	}

	// The deployment: a CREATE frame to the new address.
	var cr tracedCallFrame
	if err := debugTrace(t, rc, deployTx.Hash(), map[string]any{"tracer": "callTracer"}, &cr); err != nil {
		t.Fatal(err)
	}
	if cr.Type != "CREATE" || cr.To == nil || *cr.To != token || uint64(cr.GasUsed) != dr.GasUsed || !bytesEqual(cr.Output, contracts.ERC20().DeployedBytecode) {
		t.Fatalf("create frame type %s to %v gas %d (receipt %d)", cr.Type, cr.To, cr.GasUsed, dr.GasUsed)
	}

	// Other native tracers run too.
	for _, name := range []string{"prestateTracer", "4byteTracer", "flatCallTracer", "noopTracer"} {
		var out json.RawMessage
		if err := debugTrace(t, rc, tx2.Hash(), map[string]any{"tracer": name}, &out); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	var mux map[string]json.RawMessage
	if err := debugTrace(t, rc, tx2.Hash(), map[string]any{"tracer": "muxTracer", "tracerConfig": map[string]any{"callTracer": map[string]any{}, "4byteTracer": nil}}, &mux); err != nil || len(mux) != 2 {
		t.Errorf("muxTracer: %v %v", err, mux)
	}

	// Byte for byte what go-ethereum's own tracing path answers.
	for _, h := range []common.Hash{deployTx.Hash(), alTx.Hash(), tx1.Hash(), tx2.Hash(), tx3.Hash()} {
		for _, cfg := range []string{
			`{}`,
			`{"enableMemory":true,"enableReturnData":true,"disableStack":false}`,
			`{"disableStorage":true,"limit":40}`,
			`{"tracer":"callTracer"}`,
			`{"tracer":"callTracer","tracerConfig":{"withLog":true}}`,
			`{"tracer":"callTracer","tracerConfig":{"onlyTopCall":true,"withLog":true}}`,
			`{"tracer":"prestateTracer"}`,
			`{"tracer":"prestateTracer","tracerConfig":{"diffMode":true}}`,
			`{"tracer":"4byteTracer"}`,
			`{"tracer":"flatCallTracer"}`,
		} {
			var got json.RawMessage
			if err := rc.CallContext(ctx, &got, "debug_traceTransaction", h, json.RawMessage(cfg)); err != nil {
				t.Fatalf("trace %s %s: %v", h, cfg, err)
			}
			if want := gethTrace(t, ec, h, cfg); string(got) != string(want) {
				t.Errorf("trace of %s with %s differs from go-ethereum's\n got %s\nwant %s", h, cfg, got, want)
			}
		}
	}

	// A transaction of the open block is traced before its block is sealed.
	pend := alice.dynamic(t, &token, nil, 100_000, contracts.ERC20TransferData(bob.addr, big.NewInt(1)))
	pr, err := ec.SendTransactionSync(ctx, pend, nil)
	if err != nil || pr.Status != 1 {
		t.Fatalf("pending transfer: %v %+v", err, pr)
	}
	var pt tracedCallFrame
	if err := debugTrace(t, rc, pend.Hash(), map[string]any{"tracer": "callTracer"}, &pt); err != nil || uint64(pt.GasUsed) != pr.GasUsed {
		t.Fatalf("trace of a pending transaction: %v gas %d, receipt %d", err, pt.GasUsed, pr.GasUsed)
	}

	// Errors.
	var out json.RawMessage
	for _, tc := range []struct {
		hash common.Hash
		cfg  any
		want string
	}{
		{common.Hash{0x42}, nil, "transaction not found"},
		{tx2.Hash(), map[string]any{"tracer": "fooTracer"}, `tracer "fooTracer" not found`},
		{tx2.Hash(), map[string]any{"tracer": "muxTracer", "tracerConfig": map[string]any{"barTracer": map[string]any{}}}, `tracer "barTracer" not found`},
		{tx2.Hash(), map[string]any{"tracer": "callTracer", "tracerConfig": map[string]any{"onlyTopCall": "yes"}}, "json: cannot unmarshal string into Go struct field callTracerConfig.onlyTopCall of type bool"},
		{tx2.Hash(), map[string]any{"tracer": "callTracer", "tracerConfig": "x"}, "json: cannot unmarshal string into Go value of type native.callTracerConfig"},
		{tx2.Hash(), map[string]any{"tracer": "prestateTracer", "tracerConfig": []int{1}}, "json: cannot unmarshal array"},
		{tx2.Hash(), map[string]any{"timeout": "soon"}, `time: invalid duration "soon"`},
	} {
		err := rc.CallContext(ctx, &out, "debug_traceTransaction", tc.hash, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: error %v, want %q", tc.hash, tc.cfg, err, tc.want)
		}
	}
	// Odd configurations for every native tracer give a result or an error,
	// never a crashed handler.
	names := []string{"callTracer", "prestateTracer", "4byteTracer", "flatCallTracer", "noopTracer", "muxTracer", "erc7562Tracer", "keccak256PreimageTracer"}
	configs := []string{`null`, `{}`, `[]`, `1`, `"x"`, `{"a":1}`, `{"onlyTopCall":true,"withLog":true}`, `{"diffMode":true,"disableCode":true,"disableStorage":true}`,
		`{"convertParityErrors":true,"includePrecompiles":true}`, `{"callTracer":null,"prestateTracer":{"diffMode":true}}`, `{"fooTracer":{}}`,
		`{"muxTracer":{"muxTracer":{"nope":{}}}}`, `{"ignoredOpcodes":{"0x01":true},"withLog":true}`, `{"4byteTracer":"x"}`}
	for _, name := range names {
		for _, cfg := range configs {
			raw := json.RawMessage(`{"tracer":"` + name + `","tracerConfig":` + cfg + `}`)
			err := rc.CallContext(ctx, &out, "debug_traceTransaction", tx2.Hash(), raw)
			var rerr gethrpc.Error
			if err != nil && (!errors.As(err, &rerr) || rerr.ErrorCode() != -32000 || strings.Contains(err.Error(), "panic")) {
				t.Errorf("%s: %v", raw, err)
			}
		}
	}
	// The node still serves after all that.
	if _, err := ec.BlockNumber(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestTraceNeedsParentState: with one retained root, a transaction whose parent
// block's root is gone cannot be traced.
func TestTraceNeedsParentState(t *testing.T) {
	_, ec, rc := startSequencer(t, t.TempDir(), func(c *sequencer.Config) {
		c.RetainRoots = 1
		c.BlockInterval = 50 * time.Millisecond
	})
	ctx := context.Background()
	alice, bob := devWallet(0), devWallet(1)
	tx := alice.dynamic(t, &bob.addr, big.NewInt(1), 21000, nil)
	if err := ec.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	r := waitReceipt(t, ec, tx.Hash())
	waitBlocksPast(t, ec, r.BlockNumber.Uint64()+2)
	var out json.RawMessage
	err := rc.CallContext(ctx, &out, "debug_traceTransaction", tx.Hash())
	if err == nil || err.Error() != "historical state not available" {
		t.Fatalf("trace without parent state: %v", err)
	}
	err = rc.CallContext(ctx, &out, "eth_createAccessList", map[string]any{"to": bob.addr}, hexutil.EncodeBig(r.BlockNumber))
	if err == nil || err.Error() != "historical state not available" {
		t.Fatalf("createAccessList without state: %v", err)
	}
}

// gethTrace replays the chain from the dev genesis on go-ethereum's own StateDB
// and traces transaction h the way go-ethereum's tracers.API.traceTx does: the
// reference debug_traceTransaction must match byte for byte. The system calls
// run at the start of each block; the mini-blocks may have run the EIP-2935 one
// later, which reads the same (the slot is served lazily until then).
func gethTrace(t *testing.T, ec *ethclient.Client, h common.Hash, cfgJSON string) json.RawMessage {
	t.Helper()
	ctx := context.Background()
	r, err := ec.TransactionReceipt(ctx, h)
	if err != nil {
		t.Fatalf("receipt %s: %v", h, err)
	}
	g := chain.DevGenesis()
	ccfg := g.ChainConfig()
	sdb, err := gethstate.New(types.EmptyRootHash, gethstate.NewDatabaseForTesting())
	if err != nil {
		t.Fatal(err)
	}
	for addr, a := range g.Alloc {
		sdb.SetBalance(addr, uint256.MustFromBig(a.Balance), tracing.BalanceChangeUnspecified)
		sdb.SetNonce(addr, a.Nonce, tracing.NonceChangeUnspecified)
		if len(a.Code) > 0 {
			sdb.SetCode(addr, a.Code, tracing.CodeChangeUnspecified)
		}
		for k, v := range a.Storage {
			sdb.SetState(addr, k, v)
		}
	}
	sdb.Finalise(true)
	genesis, err := ec.HeaderByNumber(ctx, big.NewInt(0))
	if err != nil {
		t.Fatal(err)
	}
	hashes := map[uint64]common.Hash{0: genesis.Hash()}
	signer := types.LatestSignerForChainID(ccfg.ChainID)
	for n := uint64(1); n <= r.BlockNumber.Uint64(); n++ {
		blk, err := ec.BlockByNumber(ctx, new(big.Int).SetUint64(n))
		if err != nil {
			t.Fatalf("block %d: %v", n, err)
		}
		head := blk.Header()
		hashes[n] = blk.Hash()
		random := head.MixDigest
		bctx := vm.BlockContext{CanTransfer: core.CanTransfer, Transfer: core.Transfer, GetHash: func(i uint64) common.Hash { return hashes[i] },
			Coinbase: head.Coinbase, GasLimit: head.GasLimit, BlockNumber: head.Number, Time: head.Time, Difficulty: new(big.Int),
			BaseFee: head.BaseFee, BlobBaseFee: big.NewInt(params.BlobTxMinBlobGasprice), Random: &random}
		evm := vm.NewEVM(bctx, sdb, ccfg, vm.Config{})
		core.ProcessBeaconBlockRoot(common.Hash{}, evm)
		core.ProcessParentBlockHash(head.ParentHash, evm)
		gp := core.NewGasPool(head.GasLimit)
		for i, tx := range blk.Transactions() {
			msg, err := core.TransactionToMessage(tx, signer, head.BaseFee)
			if err != nil {
				t.Fatal(err)
			}
			if tx.Hash() == h {
				var tc tracers.TraceConfig
				if err := json.Unmarshal([]byte(cfgJSON), &tc); err != nil {
					t.Fatal(err)
				}
				txctx := &tracers.Context{BlockHash: blk.Hash(), BlockNumber: head.Number, TxIndex: i, TxHash: h}
				var tracer *tracers.Tracer
				if tc.Tracer == nil {
					l := logger.NewStructLogger(tc.Config)
					tracer = &tracers.Tracer{Hooks: l.Hooks(), GetResult: l.GetResult, Stop: l.Stop}
				} else if tracer, err = tracers.DefaultDirectory.New(*tc.Tracer, txctx, tc.TracerConfig, ccfg); err != nil {
					t.Fatal(err)
				}
				tevm := vm.NewEVM(bctx, gethstate.NewHookedState(sdb, tracer.Hooks), ccfg, vm.Config{Tracer: tracer.Hooks, NoBaseFee: true})
				sdb.SetTxContext(h, i)
				if _, err := core.ApplyTransactionWithEVM(msg, core.NewGasPool(msg.GasLimit), sdb, head.Number, blk.Hash(), head.Time, tx, tevm); err != nil {
					t.Fatalf("reference trace: %v", err)
				}
				out, err := tracer.GetResult()
				if err != nil {
					t.Fatalf("reference result: %v", err)
				}
				return out
			}
			sdb.SetTxContext(tx.Hash(), i)
			if _, err := core.ApplyTransactionWithEVM(msg, gp, sdb, head.Number, blk.Hash(), head.Time, tx, evm); err != nil {
				t.Fatalf("reference replay of %s: %v", tx.Hash(), err)
			}
		}
	}
	t.Fatalf("transaction %s not found in block %v", h, r.BlockNumber)
	return nil
}
