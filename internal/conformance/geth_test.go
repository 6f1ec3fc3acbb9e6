package conformance

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/catalyst"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/eth/filters"
	"github.com/ethereum/go-ethereum/eth/tracers"
	_ "github.com/ethereum/go-ethereum/eth/tracers/native" // callTracer, prestateTracer
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/kestrel-l2/kestrel/bench"
	"github.com/kestrel-l2/kestrel/core/chain"
)

// gethNode is an in-process go-ethereum full node with its standard JSON-RPC
// stack on a loopback HTTP port. It is assembled the way
// ethclient/simulated.NewBackend assembles its node (node.Node + eth.Ethereum
// + the filter API) plus the debug tracing API that `geth` registers, but
// without the simulated beacon: blocks arrive through the engine API
// (NewPayloadV4 + ForkchoiceUpdatedV3), exactly as a consensus client would
// deliver them, so that the imported blocks are Kestrel's own.
//
// The simulated backend itself is not used because its Commit lets
// go-ethereum's miner build each block: the miner orders transactions by tip
// (not Kestrel's order) and picks its own timestamp, prevrandao and extra
// data, and the EIP-2935/EIP-4788 system contracts store those (parent hashes,
// timestamps), so no state root or block hash could match. The backend does
// not expose its eth.Ethereum to feed it blocks another way.
type gethNode struct {
	stack  *node.Node
	eth    *eth.Ethereum
	engine *catalyst.ConsensusAPI
	url    string
}

// startGeth runs a go-ethereum node on the genesis. The node is an archive
// (hash scheme, no pruning) so that state at every block can be read, as
// Kestrel serves it with a large RetainRoots.
func startGeth(t *testing.T, g *chain.Genesis, verbose bool) *gethNode {
	t.Helper()
	if !verbose {
		log.SetDefault(log.NewLogger(log.DiscardHandler()))
	}
	nodeConf := node.DefaultConfig
	nodeConf.DataDir = "" // in memory
	nodeConf.P2P = p2p.Config{NoDiscovery: true, MaxPeers: 0}
	nodeConf.HTTPHost = "127.0.0.1"
	nodeConf.HTTPPort = 0
	nodeConf.HTTPModules = []string{"eth", "net", "web3", "debug", "txpool"}
	nodeConf.AuthPort = 0
	nodeConf.UseLightweightKDF = true
	stack, err := node.New(&nodeConf)
	if err != nil {
		t.Fatalf("geth node: %v", err)
	}

	ethConf := ethconfig.Defaults
	ethConf.Genesis = bench.GethGenesis(g)
	ethConf.NetworkId = g.ChainID
	ethConf.SyncMode = ethconfig.FullSync
	ethConf.NoPruning = true
	ethConf.StateScheme = rawdb.HashScheme
	ethConf.TxPool.NoLocals = true
	ethConf.Miner.GasCeil = g.GasLimit
	ethConf.RPCGasCap = 50_000_000 // Kestrel's --rpc.gascap default
	ethConf.RPCEVMTimeout = 5 * time.Second
	backend, err := eth.New(stack, &ethConf)
	if err != nil {
		stack.Close()
		t.Fatalf("geth eth service: %v", err)
	}
	filterSystem := filters.NewFilterSystem(backend.APIBackend, filters.Config{
		LogCacheSize: ethConf.FilterLogCacheSize, LogQueryLimit: ethConf.LogQueryLimit, RangeLimit: ethConf.RangeLimit,
	})
	stack.RegisterAPIs([]gethrpc.API{{Namespace: "eth", Service: filters.NewFilterAPI(filterSystem)}})
	stack.RegisterAPIs(tracers.APIs(backend.APIBackend))
	if err := stack.Start(); err != nil {
		stack.Close()
		t.Fatalf("start geth: %v", err)
	}
	t.Cleanup(func() {
		if err := stack.Close(); err != nil {
			t.Errorf("close geth: %v", err)
		}
	})
	return &gethNode{stack: stack, eth: backend, engine: catalyst.NewConsensusAPI(backend), url: stack.HTTPEndpoint()}
}

// importBlock hands go-ethereum one Kestrel block through the engine API and
// makes it the head (and the safe and finalized block, as Kestrel reports
// them until L1 settlement exists). go-ethereum re-executes the transactions
// and refuses the block unless its own state root, receipts root, bloom, gas
// used, transactions root, base fee and hash equal Kestrel's.
func (n *gethNode) importBlock(ctx context.Context, header *types.Header, txs []*types.Transaction) error {
	block := types.NewBlockWithHeader(header).WithBody(types.Body{Transactions: txs, Withdrawals: []*types.Withdrawal{}})
	if block.Hash() != header.Hash() {
		return fmt.Errorf("block %d: body changes the hash", header.Number)
	}
	env := engine.BlockToExecutableData(block, nil, nil, nil)
	var beaconRoot *common.Hash
	if header.ParentBeaconRoot != nil {
		r := *header.ParentBeaconRoot
		beaconRoot = &r
	}
	status, err := n.engine.NewPayloadV4(ctx, *env.ExecutionPayload, []common.Hash{}, beaconRoot, []hexutil.Bytes{})
	if err != nil {
		return fmt.Errorf("newPayload %d: %w", header.Number, err)
	}
	if status.Status != engine.VALID {
		msg := ""
		if status.ValidationError != nil {
			msg = *status.ValidationError
		}
		return fmt.Errorf("go-ethereum refused Kestrel block %d (%s): %s: %s", header.Number, header.Hash(), status.Status, msg)
	}
	h := block.Hash()
	fcu, err := n.engine.ForkchoiceUpdatedV3(ctx, engine.ForkchoiceStateV1{HeadBlockHash: h, SafeBlockHash: h, FinalizedBlockHash: h}, nil)
	if err != nil {
		return fmt.Errorf("forkchoiceUpdated %d: %w", header.Number, err)
	}
	if fcu.PayloadStatus.Status != engine.VALID {
		return fmt.Errorf("forkchoiceUpdated %d: %s", header.Number, fcu.PayloadStatus.Status)
	}
	return nil
}
