package rpc

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"net"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// hashBackend accepts every transaction, answering keccak(raw) (the hash of a
// typed transaction), so that benchmarks measure the RPC layer only.
type hashBackend struct{ *fakeBackend }

func (h hashBackend) SendRawTransaction(_ context.Context, raw []byte) (common.Hash, error) {
	return crypto.Keccak256Hash(raw), nil
}

type hashBatchBackend struct{ hashBackend }

func (h hashBatchBackend) SendRawTransactions(ctx context.Context, raws [][]byte) ([]common.Hash, []error) {
	hashes := make([]common.Hash, len(raws))
	for i, raw := range raws {
		hashes[i] = crypto.Keccak256Hash(raw)
	}
	return hashes, make([]error, len(raws))
}

func sendRawBatch(b testing.TB, c *testChain, n int) []byte {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i := range n {
		tx, err := types.SignNewTx(c.keys[i%3], c.signer, &types.DynamicFeeTx{
			ChainID: c.cfg.ChainID, Nonce: uint64(i), GasTipCap: big.NewInt(gwei), GasFeeCap: big.NewInt(30 * gwei),
			Gas: 21000, To: &c.addrs[(i+1)%3], Value: big.NewInt(int64(i)),
		})
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := tx.MarshalBinary()
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"jsonrpc":"2.0","id":%d,"method":"eth_sendRawTransaction","params":["%s"]}`, i, hexutil.Encode(raw))
	}
	buf.WriteByte(']')
	return buf.Bytes()
}

// BenchmarkSendRawBatch measures batches of 1000 eth_sendRawTransaction calls
// through the in-process entry point and through fasthttp (in-memory
// listener); ns/op is per batch, tx/s is reported.
func BenchmarkSendRawBatch(b *testing.B) {
	fb := newFakeBackend(b)
	const n = 1000
	body := sendRawBatch(b, fb.c, n)
	for _, bc := range []struct {
		name string
		be   Backend
	}{
		{"handle", hashBackend{fb}},
		{"handle-batchsender", hashBatchBackend{hashBackend{fb}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newTestServer(b, bc.be, Config{})
			var out []byte
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				out, _ = s.serveBody(context.Background(), body, out[:0])
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tx/s")
		})
	}
	b.Run("http", func(b *testing.B) {
		s := newTestServer(b, hashBatchBackend{hashBackend{fb}}, Config{})
		ln := fasthttputil.NewInmemoryListener()
		srv := &fasthttp.Server{Handler: s.Handler(), MaxRequestBodySize: s.cfg.MaxBodyBytes}
		go srv.Serve(ln)
		defer srv.Shutdown()
		client := &fasthttp.HostClient{Addr: "rpc", Dial: func(string) (net.Conn, error) { return ln.Dial() }}
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://rpc/")
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.SetBody(body)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Fatal(err, resp.StatusCode())
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tx/s")
	})
}

// BenchmarkSingleCalls measures small single requests.
func BenchmarkSingleCalls(b *testing.B) {
	fb := newFakeBackend(b)
	s := newTestServer(b, fb, Config{})
	for _, bc := range []struct{ name, body string }{
		{"chainId", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`},
		{"getBalance", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["` + fb.c.addrs[1].Hex() + `","latest"]}`},
		{"getBlockFull", `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["0x1",true]}`},
	} {
		body := bc.body
		b.Run(bc.name, func(b *testing.B) {
			var out []byte
			b.ReportAllocs()
			for b.Loop() {
				out, _ = s.serveBody(context.Background(), []byte(body), out[:0])
			}
		})
	}
}
