package contracts

import (
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/vm"
)

// TestNFTInEVM deploys the collection and mints, approves and transfers:
// ids count from 0, ownerOf, balanceOf and totalSupply follow, approvals are
// enforced and cleared by a transfer, and the storage layout is the one the
// slot constants describe.
func TestNFTInEVM(t *testing.T) {
	var (
		e     = newTestEVM(t)
		alice = common.HexToAddress("0xa11ce00000000000000000000000000000000001")
		bob   = common.HexToAddress("0xb0b0000000000000000000000000000000000002")
		carol = common.HexToAddress("0xca201000000000000000000000000000000000003")
		nft   = NFT()
	)
	code, err := NFTDeployData("Kestrel Test NFT", "KTN")
	if err != nil {
		t.Fatal(err)
	}
	coll := e.deploy(alice, code)
	ret, _ := e.mustCall(alice, coll, mustPack(nft, "name"))
	if out, err := nft.ABI.Unpack("name", ret); err != nil || out[0] != "Kestrel Test NFT" {
		t.Fatalf("name() = %v, %v", out, err)
	}
	uint256 := func(from common.Address, data []byte) *big.Int {
		t.Helper()
		ret, _ := e.mustCall(from, coll, data)
		v, err := NFTUnpackUint256(ret)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	owner := func(id int64) common.Address {
		t.Helper()
		ret, _ := e.mustCall(alice, coll, NFTOwnerOfData(big.NewInt(id)))
		a, err := NFTUnpackAddress(ret)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	// Anyone mints; ids count from 0.
	for i, to := range []common.Address{bob, carol, bob} {
		ret, logs := e.mustCall(alice, coll, NFTMintData(to))
		id, err := NFTUnpackUint256(ret)
		if err != nil || id.Int64() != int64(i) {
			t.Fatalf("mint %d returned %v, %v", i, id, err)
		}
		if len(logs) != 1 || logs[0].Topics[0] != NFTTransferTopic || len(logs[0].Topics) != 4 {
			t.Fatalf("mint logs %+v", logs)
		}
		ev, err := ParseNFTTransfer(logs[0])
		if err != nil || ev.From != (common.Address{}) || ev.To != to || ev.TokenId.Int64() != int64(i) {
			t.Fatalf("mint Transfer %+v, %v", ev, err)
		}
	}
	if n := uint256(alice, NFTTotalSupplyData()); n.Int64() != 3 {
		t.Fatalf("totalSupply %v", n)
	}
	if b := uint256(alice, NFTBalanceOfData(bob)); b.Int64() != 2 {
		t.Fatalf("bob holds %v", b)
	}
	if owner(0) != bob || owner(1) != carol || owner(2) != bob {
		t.Fatalf("owners %s %s %s", owner(0), owner(1), owner(2))
	}
	st := e.cfg.State
	if got := st.GetState(coll, NFTOwnerSlot(big.NewInt(1))); common.BytesToAddress(got[:]) != carol {
		t.Fatalf("ownerOf slot of 1 holds %s", got)
	}
	if got := st.GetState(coll, NFTBalanceSlot(bob)).Big(); got.Int64() != 2 {
		t.Fatalf("balance slot of bob holds %v", got)
	}
	if got := st.GetState(coll, common.BigToHash(big.NewInt(NFTSlotNextID))).Big(); got.Int64() != 3 {
		t.Fatalf("nextId slot holds %v", got)
	}
	ret, _, err = e.call(alice, coll, NFTOwnerOfData(big.NewInt(3)))
	if !errors.Is(err, vm.ErrExecutionReverted) || revertReason(ret) != NFTErrNonexistentToken {
		t.Fatalf("ownerOf(3): err %v reason %q", err, revertReason(ret))
	}
	ret, _, err = e.call(alice, coll, NFTMintData(common.Address{}))
	if !errors.Is(err, vm.ErrExecutionReverted) || revertReason(ret) != NFTErrMintToZero {
		t.Fatalf("mint to zero: err %v reason %q", err, revertReason(ret))
	}

	// Only the owner, an approved account or an operator moves a token.
	ret, _, err = e.call(alice, coll, NFTTransferFromData(bob, alice, big.NewInt(0)))
	if !errors.Is(err, vm.ErrExecutionReverted) || revertReason(ret) != NFTErrNotApproved {
		t.Fatalf("unapproved transfer: err %v reason %q", err, revertReason(ret))
	}
	ret, _, err = e.call(carol, coll, NFTTransferFromData(bob, alice, big.NewInt(1)))
	if !errors.Is(err, vm.ErrExecutionReverted) || revertReason(ret) != NFTErrIncorrectOwner {
		t.Fatalf("transfer from a non-owner: err %v reason %q", err, revertReason(ret))
	}
	_, logs := e.mustCall(bob, coll, NFTApproveData(alice, big.NewInt(0)))
	if len(logs) != 1 || logs[0].Topics[0] != NFTApprovalTopic {
		t.Fatalf("approve logs %+v", logs)
	}
	_, logs = e.mustCall(alice, coll, NFTTransferFromData(bob, alice, big.NewInt(0)))
	if ev, err := ParseNFTTransfer(logs[0]); err != nil || ev.From != bob || ev.To != alice || ev.TokenId.Sign() != 0 {
		t.Fatalf("Transfer %+v, %v", ev, err)
	}
	ret, _ = e.mustCall(alice, coll, NFTGetApprovedData(big.NewInt(0)))
	if a, err := NFTUnpackAddress(ret); err != nil || a != (common.Address{}) {
		t.Fatalf("approval after transfer %s, %v", a, err)
	}
	if owner(0) != alice || uint256(alice, NFTBalanceOfData(bob)).Int64() != 1 || uint256(alice, NFTBalanceOfData(alice)).Int64() != 1 {
		t.Fatal("ownership after an approved transfer")
	}
	_, logs = e.mustCall(bob, coll, NFTSetApprovalForAllData(carol, true))
	if len(logs) != 1 || logs[0].Topics[0] != NFTApprovalForAllTopic {
		t.Fatalf("setApprovalForAll logs %+v", logs)
	}
	e.mustCall(carol, coll, NFTTransferFromData(bob, carol, big.NewInt(2)))
	if owner(2) != carol || uint256(alice, NFTBalanceOfData(carol)).Int64() != 2 {
		t.Fatal("ownership after an operator's transfer")
	}

	// A safe transfer to a contract that does not accept tokens reverts.
	safe := func(from, to common.Address, id int64) error {
		_, _, err := e.call(from, coll, mustPack(nft, "safeTransferFrom", from, to, big.NewInt(id)))
		return err
	}
	if err := safe(carol, coll, 1); !errors.Is(err, vm.ErrExecutionReverted) {
		t.Fatalf("safe transfer to a non-receiver: %v", err)
	}
	if err := safe(carol, bob, 1); err != nil || owner(1) != bob {
		t.Fatalf("safe transfer to an account: %v", err)
	}

	// ERC-165: ERC-165 and ERC-721.
	for id, want := range map[[4]byte]bool{{0x01, 0xff, 0xc9, 0xa7}: true, {0x80, 0xac, 0x58, 0xcd}: true, {0xff, 0xff, 0xff, 0xff}: false} {
		ret, _ := e.mustCall(alice, coll, mustPack(nft, "supportsInterface", id))
		if out, err := nft.ABI.Unpack("supportsInterface", ret); err != nil || out[0] != want {
			t.Fatalf("supportsInterface(%x) = %v, %v", id, out, err)
		}
	}
}

// TestNFTFromGenesisStorage installs the runtime code with only name and
// symbol in storage, as a genesis allocation does: the collection works and
// mints from id 0.
func TestNFTFromGenesisStorage(t *testing.T) {
	var (
		e    = newTestEVM(t)
		coll = common.HexToAddress("0x000000000000000000000000000000000000f721")
		bob  = common.HexToAddress("0xb0b0000000000000000000000000000000000002")
		nft  = NFT()
	)
	short := func(s string) common.Hash {
		var h common.Hash
		copy(h[:], s)
		h[31] = byte(2 * len(s))
		return h
	}
	st := e.cfg.State
	st.SetCode(coll, nft.DeployedBytecode, tracing.CodeChangeUnspecified)
	st.SetState(coll, common.BigToHash(big.NewInt(NFTSlotName)), short("Genesis NFT"))
	st.SetState(coll, common.BigToHash(big.NewInt(NFTSlotSymbol)), short("GNFT"))
	ret, _ := e.mustCall(bob, coll, mustPack(nft, "symbol"))
	if out, err := nft.ABI.Unpack("symbol", ret); err != nil || out[0] != "GNFT" {
		t.Fatalf("symbol() = %v, %v", out, err)
	}
	ret, _ = e.mustCall(bob, coll, NFTMintData(bob))
	if id, err := NFTUnpackUint256(ret); err != nil || id.Sign() != 0 {
		t.Fatalf("first mint id %v, %v", id, err)
	}
	ret, _ = e.mustCall(bob, coll, NFTOwnerOfData(new(big.Int)))
	if a, err := NFTUnpackAddress(ret); err != nil || a != bob {
		t.Fatalf("ownerOf(0) = %s, %v", a, err)
	}
}
