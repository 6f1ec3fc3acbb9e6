package chain

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"golang.org/x/crypto/pbkdf2"
)

// DevMnemonic is the well-known development mnemonic used by Hardhat, Anvil and
// Foundry. Its keys are public: never fund them on a real network.
const DevMnemonic = "test test test test test test test test test test test junk"

// DevAccount is a key derived from DevMnemonic.
type DevAccount struct {
	Address common.Address
	Key     *ecdsa.PrivateKey
}

// DevAccounts derives the first ten accounts of DevMnemonic at m/44'/60'/0'/0/i.
func DevAccounts() []DevAccount {
	accs := make([]DevAccount, 10)
	for i := range accs {
		key, err := DeriveKey(DevMnemonic, "", uint32(i))
		if err != nil {
			panic(fmt.Sprintf("derive dev key %d: %v", i, err)) // constant input; cannot fail
		}
		accs[i] = DevAccount{Address: crypto.PubkeyToAddress(key.PublicKey), Key: key}
	}
	return accs
}

const hardened = 0x80000000

// DeriveKey derives the BIP-44 Ethereum key m/44'/60'/0'/0/index from a BIP-39
// mnemonic and passphrase (BIP-32 private derivation over secp256k1). The mnemonic's
// word list checksum is not verified.
func DeriveKey(mnemonic, passphrase string, index uint32) (*ecdsa.PrivateKey, error) {
	seed := pbkdf2.Key([]byte(mnemonic), []byte("mnemonic"+passphrase), 2048, 64, sha512.New)
	mac := hmac.New(sha512.New, []byte("Bitcoin seed"))
	mac.Write(seed)
	sum := mac.Sum(nil)
	key, chainCode := new(big.Int).SetBytes(sum[:32]), sum[32:]
	n := crypto.S256().Params().N
	for _, idx := range []uint32{44 + hardened, 60 + hardened, hardened, 0, index} {
		data := make([]byte, 0, 37)
		if idx >= hardened {
			data = append(data, 0)
			data = append(data, common.LeftPadBytes(key.Bytes(), 32)...)
		} else {
			priv, err := crypto.ToECDSA(common.LeftPadBytes(key.Bytes(), 32))
			if err != nil {
				return nil, err
			}
			data = append(data, crypto.CompressPubkey(&priv.PublicKey)...)
		}
		data = binary.BigEndian.AppendUint32(data, idx)
		mac := hmac.New(sha512.New, chainCode)
		mac.Write(data)
		sum := mac.Sum(nil)
		il := new(big.Int).SetBytes(sum[:32])
		if il.Cmp(n) >= 0 {
			return nil, errors.New("invalid derived key (IL >= n)")
		}
		key = il.Add(il, key)
		key.Mod(key, n)
		if key.Sign() == 0 {
			return nil, errors.New("invalid derived key (zero)")
		}
		chainCode = sum[32:]
	}
	return crypto.ToECDSA(common.LeftPadBytes(key.Bytes(), 32))
}
