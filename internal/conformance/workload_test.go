package conformance

import (
	"crypto/ecdsa"
	"encoding/binary"
	"fmt"
	"math/big"
	"math/rand/v2"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/contracts"
	"github.com/kestrel-l2/kestrel/core/chain"
)

// Tiny hand-assembled contracts, each deployed with initCode.
var (
	// destructorCode is CALLER SELFDESTRUCT: under EIP-6780 a call only moves
	// the balance to the caller.
	destructorCode = []byte{0x33, 0xff}
	// factoryInit is creation code that CREATEs a child whose runtime is 0x01
	// and installs no code itself: a nested creation that bumps the creator's
	// nonce.
	factoryInit = append(append([]byte{0x69}, childInit...), 0x60, 0x00, 0x52, 0x60, 0x0a, 0x60, 0x16, 0x60, 0x00, 0xf0, 0x50, 0x00)
	childInit   = []byte{0x60, 0x01, 0x60, 0x00, 0x53, 0x60, 0x01, 0x60, 0x00, 0xf3}
	// revertingInit reverts during creation (REVERT(0, 0)).
	revertingInit = []byte{0x60, 0x00, 0x60, 0x00, 0xfd}
	// loggerCode stores CALLDATALOAD(0) at slot NUMBER and emits LOG2 with
	// topics CALLER and CALLVALUE over the first 32 bytes of calldata.
	loggerCode = []byte{
		0x60, 0x00, 0x35, 0x43, 0x55, // SSTORE(NUMBER, CALLDATALOAD(0))
		0x36, 0x60, 0x00, 0x60, 0x00, 0x37, // CALLDATACOPY(0, 0, CALLDATASIZE)
		0x34, 0x33, 0x60, 0x20, 0x60, 0x00, 0xa2, // LOG2(0, 32, CALLER, CALLVALUE)
		0x00,
	}
)

// initCode wraps runtime code in creation code that returns it.
func initCode(runtime []byte) []byte {
	n := byte(len(runtime))
	return append([]byte{0x60, n, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, n, 0x60, 0x00, 0xf3}, runtime...)
}

type sender struct {
	key   *ecdsa.PrivateKey
	addr  common.Address
	nonce uint64
}

// workload generates a deterministic (for a seed) mix of signed transactions:
// ETH transfers to known, new and empty accounts and to a precompile, ERC-20
// deployments, transfers, approvals and transferFroms (some exceeding the
// balance and reverting), Reverter calls that log or revert (reason, custom
// error, require), out-of-gas calls, contract creations (nested CREATE,
// reverting init code, a self-destructing contract and calls to it), EIP-7702
// delegations of fresh EOAs to Reverter and calls through them, in the
// legacy, EIP-2930, EIP-1559 and EIP-7702 envelopes.
type workload struct {
	rng     *rand.Rand
	signer  types.Signer
	chainID *big.Int
	senders []*sender
	// authorities are unfunded EOAs that only sign EIP-7702 authorizations.
	authorities []*sender
	delegated   map[common.Address]bool

	token, token2, reverter, destructor, logger common.Address
	fresh                                       []common.Address
	approvals                                   [][2]int // (owner, spender) sender indices

	raw    map[common.Hash][]byte
	kindOf map[common.Hash]string
	kinds  map[string]int
}

func newWorkload(seed uint64) *workload {
	w := &workload{
		rng:       rand.New(rand.NewPCG(seed, 0x6b657374)),
		chainID:   big.NewInt(chain.DevChainID),
		delegated: make(map[common.Address]bool),
		raw:       make(map[common.Hash][]byte),
		kindOf:    make(map[common.Hash]string),
		kinds:     make(map[string]int),
	}
	w.signer = types.LatestSignerForChainID(w.chainID)
	// Account 9 signs Kestrel's blocks; the other nine send.
	for _, a := range chain.DevAccounts()[:9] {
		w.senders = append(w.senders, &sender{key: a.Key, addr: a.Address})
	}
	for i := 0; i < 4; i++ {
		k, err := crypto.ToECDSA(crypto.Keccak256([]byte(fmt.Sprintf("kestrel/conformance/authority/%d", i))))
		if err != nil {
			panic(err)
		}
		w.authorities = append(w.authorities, &sender{key: k, addr: crypto.PubkeyToAddress(k.PublicKey)})
	}
	return w
}

func (w *workload) freshAddress() common.Address {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(len(w.fresh)))
	a := common.BytesToAddress(crypto.Keccak256([]byte("kestrel/conformance/fresh"), b[:]))
	w.fresh = append(w.fresh, a)
	return a
}

// sign signs inner for s, records the raw transaction and bumps the nonce.
func (w *workload) sign(s *sender, kind string, inner types.TxData) *types.Transaction {
	tx, err := types.SignNewTx(s.key, w.signer, inner)
	if err != nil {
		panic(err)
	}
	raw, err := tx.MarshalBinary()
	if err != nil {
		panic(err)
	}
	w.raw[tx.Hash()] = raw
	w.kindOf[tx.Hash()] = kind
	w.kinds[kind]++
	s.nonce++
	return tx
}

// tx builds a transaction of a random envelope (legacy, EIP-2930 or EIP-1559).
func (w *workload) tx(s *sender, kind string, to *common.Address, value *big.Int, gas uint64, data []byte, al types.AccessList) *types.Transaction {
	if value == nil {
		value = new(big.Int)
	}
	switch w.rng.IntN(3) {
	case 0:
		return w.sign(s, kind, &types.LegacyTx{Nonce: s.nonce, GasPrice: big.NewInt(3 * params.GWei), Gas: gas, To: to, Value: value, Data: data})
	case 1:
		return w.sign(s, kind, &types.AccessListTx{ChainID: w.chainID, Nonce: s.nonce, GasPrice: big.NewInt(2*params.GWei + int64(w.rng.IntN(1000))),
			Gas: gas, To: to, Value: value, Data: data, AccessList: al})
	default:
		tips := []int64{0, 1, 1_000_000, params.GWei}
		return w.sign(s, kind, &types.DynamicFeeTx{ChainID: w.chainID, Nonce: s.nonce, GasTipCap: big.NewInt(tips[w.rng.IntN(len(tips))]),
			GasFeeCap: big.NewInt(4 * params.GWei), Gas: gas, To: to, Value: value, Data: data, AccessList: al})
	}
}

// setup deploys the contracts the random steps use and hands out tokens.
func (w *workload) setup() []*types.Transaction {
	s := w.senders
	supply := new(big.Int).Mul(big.NewInt(1_000_000), big.NewInt(params.Ether))
	tokenData, err := contracts.ERC20DeployData("Conformance", "CNF", supply)
	if err != nil {
		panic(err)
	}
	token2Data, err := contracts.ERC20DeployData("Second", "TWO", supply)
	if err != nil {
		panic(err)
	}
	var txs []*types.Transaction
	w.token = crypto.CreateAddress(s[0].addr, s[0].nonce)
	txs = append(txs, w.sign(s[0], "deploy ERC20 (legacy)", &types.LegacyTx{Nonce: s[0].nonce, GasPrice: big.NewInt(3 * params.GWei), Gas: 3_000_000, Data: tokenData}))
	w.reverter = crypto.CreateAddress(s[1].addr, s[1].nonce)
	txs = append(txs, w.sign(s[1], "deploy Reverter (1559)", &types.DynamicFeeTx{ChainID: w.chainID, Nonce: s[1].nonce, GasTipCap: big.NewInt(params.GWei),
		GasFeeCap: big.NewInt(4 * params.GWei), Gas: 1_000_000, Data: contracts.ReverterDeployData()}))
	w.token2 = crypto.CreateAddress(s[2].addr, s[2].nonce)
	txs = append(txs, w.sign(s[2], "deploy ERC20 (2930)", &types.AccessListTx{ChainID: w.chainID, Nonce: s[2].nonce, GasPrice: big.NewInt(2 * params.GWei),
		Gas: 3_000_000, Data: token2Data, AccessList: types.AccessList{{Address: s[2].addr}}}))
	w.destructor = crypto.CreateAddress(s[3].addr, s[3].nonce)
	txs = append(txs, w.tx(s[3], "deploy self-destructor", nil, nil, 200_000, initCode(destructorCode), nil))
	w.logger = crypto.CreateAddress(s[4].addr, s[4].nonce)
	txs = append(txs, w.tx(s[4], "deploy logger", nil, nil, 200_000, initCode(loggerCode), nil))
	amount := new(big.Int).Mul(big.NewInt(1000), big.NewInt(params.Ether))
	for i := 1; i < len(s); i++ {
		txs = append(txs, w.tx(s[0], "ERC20 transfer", &w.token, nil, 100_000, contracts.ERC20TransferData(s[i].addr, amount), nil))
		txs = append(txs, w.tx(s[2], "ERC20 transfer", &w.token2, nil, 100_000, contracts.ERC20TransferData(s[i].addr, amount), nil))
	}
	return txs
}

// step returns the transactions of one random step (possibly none). nonceOf
// reads an authority's current nonce from the chain (EIP-7702 authorizations
// must carry it).
func (w *workload) step(nonceOf func(common.Address) uint64) []*types.Transaction {
	n := w.rng.IntN(7)
	txs := make([]*types.Transaction, 0, n)
	usedAuthority := make(map[common.Address]bool)
	for i := 0; i < n; i++ {
		s := w.senders[w.rng.IntN(len(w.senders))]
		other := w.senders[w.rng.IntN(len(w.senders))]
		eth := new(big.Int).Mul(big.NewInt(int64(1+w.rng.IntN(1000))), big.NewInt(params.GWei*1000))
		token := w.token
		if w.rng.IntN(2) == 0 {
			token = w.token2
		}
		switch k := w.rng.IntN(20); k {
		case 0, 1:
			txs = append(txs, w.tx(s, "ETH transfer", &other.addr, eth, 21_000, nil, nil))
		case 2:
			to := w.freshAddress()
			txs = append(txs, w.tx(s, "ETH transfer to a new account", &to, eth, 21_000, nil, nil))
		case 3:
			to := w.freshAddress()
			txs = append(txs, w.tx(s, "zero-value transfer to an empty account", &to, nil, 21_000, nil, nil))
		case 4:
			to := common.BytesToAddress([]byte{4}) // identity precompile
			txs = append(txs, w.tx(s, "call to a precompile with value", &to, eth, 30_000, []byte("conformance"), nil))
		case 5, 6, 7:
			amt := new(big.Int).Mul(big.NewInt(int64(1+w.rng.IntN(50))), big.NewInt(params.Ether))
			if w.rng.IntN(8) == 0 {
				amt.Mul(amt, big.NewInt(1_000_000)) // more than anyone but the deployer holds: reverts
			}
			to := other.addr
			if w.rng.IntN(4) == 0 && len(w.fresh) > 0 {
				to = w.fresh[w.rng.IntN(len(w.fresh))]
			}
			// Half of them carry an access list naming the token.
			var al types.AccessList
			if w.rng.IntN(2) == 0 {
				al = types.AccessList{{Address: token, StorageKeys: []common.Hash{{1}, {2}}}}
			}
			txs = append(txs, w.tx(s, "ERC20 transfer", &token, nil, 100_000, contracts.ERC20TransferData(to, amt), al))
		case 8:
			amt := new(big.Int).Mul(big.NewInt(int64(1+w.rng.IntN(20))), big.NewInt(params.Ether))
			txs = append(txs, w.tx(s, "ERC20 approve", &w.token, nil, 100_000, contracts.ERC20ApproveData(other.addr, amt), nil))
			w.approvals = append(w.approvals, [2]int{w.indexOf(s), w.indexOf(other)})
		case 9:
			if len(w.approvals) == 0 {
				continue
			}
			ap := w.approvals[w.rng.IntN(len(w.approvals))]
			owner, spender := w.senders[ap[0]], w.senders[ap[1]]
			amt := new(big.Int).Mul(big.NewInt(int64(1+w.rng.IntN(10))), big.NewInt(params.Ether))
			txs = append(txs, w.tx(spender, "ERC20 transferFrom", &w.token, nil, 120_000, contracts.ERC20TransferFromData(owner.addr, other.addr, amt), nil))
		case 10, 11:
			data := make([]byte, w.rng.IntN(80))
			for j := range data {
				data[j] = byte(w.rng.IntN(256))
			}
			txs = append(txs, w.tx(s, "Reverter.store (log)", &w.reverter, nil, 100_000, contracts.ReverterStoreData(big.NewInt(int64(w.rng.IntN(1<<20))), data), nil))
		case 12:
			calls := [][]byte{contracts.ReverterRevertWithReasonData(), contracts.ReverterRevertWithCustomErrorData(), contracts.ReverterRequireTrueData(false)}
			txs = append(txs, w.tx(s, "reverting call", &w.reverter, nil, 60_000, calls[w.rng.IntN(len(calls))], nil))
		case 13:
			txs = append(txs, w.tx(s, "out-of-gas call", &w.reverter, nil, 23_500, contracts.ReverterStoreData(big.NewInt(7), nil), nil))
		case 14:
			switch w.rng.IntN(3) {
			case 0:
				txs = append(txs, w.tx(s, "create (nested CREATE)", nil, nil, 200_000, factoryInit, nil))
			case 1:
				txs = append(txs, w.tx(s, "create (reverting init code)", nil, nil, 100_000, revertingInit, nil))
			default:
				txs = append(txs, w.tx(s, "create (logger)", nil, eth, 200_000, initCode(loggerCode), nil))
			}
		case 15:
			txs = append(txs, w.tx(s, "call self-destructing contract", &w.destructor, eth, 60_000, nil, nil))
		case 16:
			word := common.BigToHash(big.NewInt(int64(w.rng.IntN(1 << 30))))
			txs = append(txs, w.tx(s, "logger call", &w.logger, eth, 80_000, word[:], nil))
		case 17:
			a := w.authorities[w.rng.IntN(len(w.authorities))]
			if usedAuthority[a.addr] {
				continue
			}
			usedAuthority[a.addr] = true
			target := w.reverter
			kind := "EIP-7702 delegation"
			if w.delegated[a.addr] && w.rng.IntN(3) == 0 {
				target = common.Address{} // clears the delegation
				kind = "EIP-7702 delegation cleared"
			}
			auth, err := types.SignSetCode(a.key, types.SetCodeAuthorization{ChainID: *uint256.MustFromBig(w.chainID), Address: target, Nonce: nonceOf(a.addr)})
			if err != nil {
				panic(err)
			}
			w.delegated[a.addr] = target != common.Address{}
			to := a.addr
			data := contracts.ReverterStoreData(big.NewInt(int64(w.rng.IntN(1000))), []byte("delegated"))
			if target == (common.Address{}) {
				data = nil
			}
			txs = append(txs, w.sign(s, kind, &types.SetCodeTx{ChainID: uint256.MustFromBig(w.chainID), Nonce: s.nonce, GasTipCap: uint256.NewInt(params.GWei),
				GasFeeCap: uint256.NewInt(4 * params.GWei), Gas: 150_000, To: to, Value: uint256.NewInt(0), Data: data, AuthList: []types.SetCodeAuthorization{auth}}))
		case 18:
			for _, a := range w.authorities {
				if w.delegated[a.addr] {
					to := a.addr
					data := contracts.ReverterStoreData(big.NewInt(int64(w.rng.IntN(1000))), []byte("through a delegation"))
					txs = append(txs, w.tx(s, "call to a delegated EOA", &to, nil, 100_000, data, nil))
					break
				}
			}
		case 19:
			txs = append(txs, w.tx(s, "ETH transfer with calldata to an EOA", &other.addr, eth, 30_000, []byte{0xde, 0xad, 0xbe, 0xef}, nil))
		}
	}
	return txs
}

func (w *workload) indexOf(s *sender) int {
	for i, x := range w.senders {
		if x == s {
			return i
		}
	}
	return -1
}
