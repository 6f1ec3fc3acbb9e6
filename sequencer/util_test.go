package sequencer_test

import (
	"crypto/ecdsa"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"
)

func decodeAccount(b []byte, a *types.StateAccount) error { return rlp.DecodeBytes(b, a) }

type ecdsaPriv = ecdsa.PrivateKey
