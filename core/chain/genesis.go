// Package chain holds Kestrel's chain format: genesis and chain configuration,
// mini-blocks, state diffs and the rules that derive an EVM block from them. It is
// shared engine code and imports no role package.
package chain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sort"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
)

// Fork names accepted in the genesis "fork" field.
const (
	ForkPrague = "prague"
	ForkOsaka  = "osaka"
)

// DevChainID is the chain id of the built-in dev chain.
const DevChainID = 31337

// Account is a genesis allocation.
type Account struct {
	Balance *big.Int                    `json:"balance"`
	Nonce   uint64                      `json:"nonce,omitempty"`
	Code    []byte                      `json:"code,omitempty"`
	Storage map[common.Hash]common.Hash `json:"storage,omitempty"`
}

type accountJSON struct {
	Balance *math.HexOrDecimal256       `json:"balance"`
	Nonce   math.HexOrDecimal64         `json:"nonce,omitempty"`
	Code    hexutil.Bytes               `json:"code,omitempty"`
	Storage map[common.Hash]common.Hash `json:"storage,omitempty"`
}

// MarshalJSON writes balances and nonces as hex quantities.
func (a Account) MarshalJSON() ([]byte, error) {
	bal := a.Balance
	if bal == nil {
		bal = new(big.Int)
	}
	return json.Marshal(accountJSON{Balance: (*math.HexOrDecimal256)(bal), Nonce: math.HexOrDecimal64(a.Nonce), Code: a.Code, Storage: a.Storage})
}

// UnmarshalJSON accepts hex or decimal balances and nonces.
func (a *Account) UnmarshalJSON(data []byte) error {
	var dec accountJSON
	if err := json.Unmarshal(data, &dec); err != nil {
		return err
	}
	if dec.Balance == nil {
		return errors.New("missing balance")
	}
	a.Balance = (*big.Int)(dec.Balance)
	a.Nonce = uint64(dec.Nonce)
	a.Code = dec.Code
	a.Storage = dec.Storage
	return nil
}

// Genesis describes the first block and the chain's rules.
type Genesis struct {
	// ChainID is the EIP-155 chain id.
	ChainID uint64 `json:"chainId"`
	// Fork is the newest Ethereum fork active from genesis: "prague" or "osaka".
	Fork string `json:"fork"`
	// Timestamp of the genesis block in seconds.
	Timestamp uint64 `json:"timestamp"`
	// GasLimit of every EVM block.
	GasLimit uint64 `json:"gasLimit"`
	// BaseFee of the genesis block in wei; later blocks follow EIP-1559.
	BaseFee *big.Int `json:"baseFee"`
	// BaseFeeChangeDenominator and ElasticityMultiplier are the EIP-1559 parameters.
	BaseFeeChangeDenominator uint64 `json:"baseFeeChangeDenominator"`
	ElasticityMultiplier     uint64 `json:"elasticityMultiplier"`
	// MinBaseFee is a floor under the EIP-1559 base fee (0: none).
	MinBaseFee *big.Int `json:"minBaseFee,omitempty"`
	// Coinbase is the fee recipient written into every header.
	Coinbase common.Address `json:"coinbase"`
	// ExtraData of the genesis header.
	ExtraData hexutil.Bytes `json:"extraData,omitempty"`
	// Alloc is the initial state.
	Alloc map[common.Address]Account `json:"alloc"`
}

type genesisJSON struct {
	ChainID                  math.HexOrDecimal64        `json:"chainId"`
	Fork                     string                     `json:"fork"`
	Timestamp                math.HexOrDecimal64        `json:"timestamp"`
	GasLimit                 math.HexOrDecimal64        `json:"gasLimit"`
	BaseFee                  *math.HexOrDecimal256      `json:"baseFee"`
	BaseFeeChangeDenominator math.HexOrDecimal64        `json:"baseFeeChangeDenominator"`
	ElasticityMultiplier     math.HexOrDecimal64        `json:"elasticityMultiplier"`
	MinBaseFee               *math.HexOrDecimal256      `json:"minBaseFee,omitempty"`
	Coinbase                 common.Address             `json:"coinbase"`
	ExtraData                hexutil.Bytes              `json:"extraData,omitempty"`
	Alloc                    map[common.Address]Account `json:"alloc"`
}

// MarshalJSON writes the genesis in the same form LoadGenesis reads.
func (g *Genesis) MarshalJSON() ([]byte, error) {
	return json.Marshal(genesisJSON{
		ChainID: math.HexOrDecimal64(g.ChainID), Fork: g.Fork, Timestamp: math.HexOrDecimal64(g.Timestamp),
		GasLimit: math.HexOrDecimal64(g.GasLimit), BaseFee: (*math.HexOrDecimal256)(g.BaseFee),
		BaseFeeChangeDenominator: math.HexOrDecimal64(g.BaseFeeChangeDenominator),
		ElasticityMultiplier:     math.HexOrDecimal64(g.ElasticityMultiplier),
		MinBaseFee:               (*math.HexOrDecimal256)(g.MinBaseFee),
		Coinbase:                 g.Coinbase, ExtraData: g.ExtraData, Alloc: g.Alloc,
	})
}

// UnmarshalJSON reads a genesis file; missing parameters take dev defaults.
func (g *Genesis) UnmarshalJSON(data []byte) error {
	var dec genesisJSON
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&dec); err != nil {
		return err
	}
	*g = Genesis{
		ChainID: uint64(dec.ChainID), Fork: dec.Fork, Timestamp: uint64(dec.Timestamp), GasLimit: uint64(dec.GasLimit),
		BaseFee: (*big.Int)(dec.BaseFee), BaseFeeChangeDenominator: uint64(dec.BaseFeeChangeDenominator),
		ElasticityMultiplier: uint64(dec.ElasticityMultiplier), MinBaseFee: (*big.Int)(dec.MinBaseFee),
		Coinbase: dec.Coinbase, ExtraData: dec.ExtraData, Alloc: dec.Alloc,
	}
	return nil
}

// LoadGenesis reads and checks a genesis JSON file. Unset parameters take the dev
// defaults; the system contracts of EIP-2935 and EIP-4788 are added when absent.
func LoadGenesis(path string) (*Genesis, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read genesis: %w", err)
	}
	var g Genesis
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("parse genesis %s: %w", path, err)
	}
	g.fillDefaults()
	if err := g.Check(); err != nil {
		return nil, fmt.Errorf("genesis %s: %w", path, err)
	}
	return &g, nil
}

// Dev defaults.
const (
	DefaultGasLimit                 = 2_000_000_000
	DefaultBaseFeeChangeDenominator = 8
	DefaultElasticityMultiplier     = 2
	DefaultGenesisTimestamp         = 1_700_000_000
)

// DevBalance is what each dev account holds at genesis: 10,000 ETH.
var DevBalance = new(big.Int).Mul(big.NewInt(10_000), big.NewInt(params.Ether))

// DefaultBaseFee is the genesis base fee: 1 gwei.
var DefaultBaseFee = big.NewInt(params.GWei)

func (g *Genesis) fillDefaults() {
	if g.ChainID == 0 {
		g.ChainID = DevChainID
	}
	if g.Fork == "" {
		g.Fork = ForkPrague
	}
	g.Fork = strings.ToLower(g.Fork)
	if g.GasLimit == 0 {
		g.GasLimit = DefaultGasLimit
	}
	if g.BaseFee == nil {
		g.BaseFee = new(big.Int).Set(DefaultBaseFee)
	}
	if g.BaseFeeChangeDenominator == 0 {
		g.BaseFeeChangeDenominator = DefaultBaseFeeChangeDenominator
	}
	if g.ElasticityMultiplier == 0 {
		g.ElasticityMultiplier = DefaultElasticityMultiplier
	}
	if g.Timestamp == 0 {
		g.Timestamp = DefaultGenesisTimestamp
	}
	if g.Alloc == nil {
		g.Alloc = make(map[common.Address]Account)
	}
	if _, ok := g.Alloc[params.BeaconRootsAddress]; !ok {
		g.Alloc[params.BeaconRootsAddress] = Account{Balance: new(big.Int), Nonce: 1, Code: params.BeaconRootsCode}
	}
	if _, ok := g.Alloc[params.HistoryStorageAddress]; !ok {
		g.Alloc[params.HistoryStorageAddress] = Account{Balance: new(big.Int), Nonce: 1, Code: params.HistoryStorageCode}
	}
}

// Check reports the first thing wrong with the genesis.
func (g *Genesis) Check() error {
	switch {
	case g.ChainID == 0:
		return errors.New("chainId must be set")
	case g.Fork != ForkPrague && g.Fork != ForkOsaka:
		return fmt.Errorf("unsupported fork %q (want %q or %q)", g.Fork, ForkPrague, ForkOsaka)
	case g.GasLimit < params.MinGasLimit:
		return fmt.Errorf("gasLimit %d below the minimum %d", g.GasLimit, params.MinGasLimit)
	case g.BaseFee == nil || g.BaseFee.Sign() <= 0:
		return errors.New("baseFee must be positive")
	case g.BaseFeeChangeDenominator == 0 || g.ElasticityMultiplier == 0:
		return errors.New("EIP-1559 parameters must be positive")
	case g.MinBaseFee != nil && g.MinBaseFee.Sign() < 0:
		return errors.New("minBaseFee must not be negative")
	case len(g.ExtraData) > 32:
		return errors.New("extraData longer than 32 bytes")
	}
	for addr, acc := range g.Alloc {
		if acc.Balance == nil || acc.Balance.Sign() < 0 || acc.Balance.BitLen() > 256 {
			return fmt.Errorf("alloc %s: balance must be a 256-bit non-negative integer", addr)
		}
	}
	return nil
}

// DevGenesis is the built-in dev chain: chain id 31337, Prague, the ten accounts
// of the dev mnemonic funded with 10,000 ETH each.
func DevGenesis() *Genesis {
	g := &Genesis{Alloc: make(map[common.Address]Account)}
	for _, acc := range DevAccounts() {
		g.Alloc[acc.Address] = Account{Balance: new(big.Int).Set(DevBalance)}
	}
	g.fillDefaults()
	return g
}

// ChainConfig is the go-ethereum rule set the EVM runs under: every fork up to
// Prague (and Osaka when configured) active from genesis, no OP-stack rules.
func (g *Genesis) ChainConfig() *params.ChainConfig {
	zero := uint64(0)
	cfg := &params.ChainConfig{
		ChainID:                 new(big.Int).SetUint64(g.ChainID),
		HomesteadBlock:          big.NewInt(0),
		EIP150Block:             big.NewInt(0),
		EIP155Block:             big.NewInt(0),
		EIP158Block:             big.NewInt(0),
		ByzantiumBlock:          big.NewInt(0),
		ConstantinopleBlock:     big.NewInt(0),
		PetersburgBlock:         big.NewInt(0),
		IstanbulBlock:           big.NewInt(0),
		MuirGlacierBlock:        big.NewInt(0),
		BerlinBlock:             big.NewInt(0),
		LondonBlock:             big.NewInt(0),
		ArrowGlacierBlock:       big.NewInt(0),
		GrayGlacierBlock:        big.NewInt(0),
		MergeNetsplitBlock:      big.NewInt(0),
		TerminalTotalDifficulty: big.NewInt(0),
		ShanghaiTime:            &zero,
		CancunTime:              &zero,
		PragueTime:              &zero,
		BlobScheduleConfig: &params.BlobScheduleConfig{
			Cancun: params.DefaultCancunBlobConfig,
			Prague: params.DefaultPragueBlobConfig,
			Osaka:  params.DefaultOsakaBlobConfig,
		},
	}
	if g.Fork == ForkOsaka {
		cfg.OsakaTime = &zero
	}
	return cfg
}

// Params is g without its allocation: the chain parameters a running node
// keeps once the allocation is in its state (at a million accounts the parsed
// allocation is ~200 MB of heap).
func (g *Genesis) Params() *Genesis {
	p := *g
	p.Alloc = nil
	return &p
}

// SortedAlloc returns the allocation's addresses in ascending order.
func (g *Genesis) SortedAlloc() []common.Address {
	addrs := make([]common.Address, 0, len(g.Alloc))
	for a := range g.Alloc {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool { return strings.Compare(string(addrs[i][:]), string(addrs[j][:])) < 0 })
	return addrs
}

// AllocDiff is the genesis allocation as a state diff (the change from an empty
// state), in canonical order.
func (g *Genesis) AllocDiff() *StateDiff {
	d := &StateDiff{}
	for _, addr := range g.SortedAlloc() {
		a := g.Alloc[addr]
		ad := AccountDiff{Address: addr, Nonce: a.Nonce, CodeHash: types.EmptyCodeHash}
		ad.Balance.SetFromBig(a.Balance)
		if len(a.Code) > 0 {
			ad.Code = a.Code
			ad.CodeHash = crypto.Keccak256Hash(a.Code)
		}
		for k, v := range a.Storage {
			if v != (common.Hash{}) {
				ad.Storage = append(ad.Storage, SlotDiff{Key: k, Value: v})
			}
		}
		d.Accounts = append(d.Accounts, ad)
	}
	d.Sort()
	return d
}
