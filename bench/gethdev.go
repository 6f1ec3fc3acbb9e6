package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// GethDev is a real `geth --dev` process: the go-ethereum binary built from
// this module (`make geth`: go build github.com/ethereum/go-ethereum/cmd/geth,
// op-geth through go.mod's replace), initialised with the workload's genesis
// so that it holds the same accounts as the Kestrel node, serving JSON-RPC on
// loopback. Dev mode seals a block as soon as transactions are pending
// (--dev.period 0, geth's default).
type GethDev struct {
	cmd     *exec.Cmd
	dir     string
	url     string
	logPath string
	exited  chan struct{}
	waitErr error
}

// GethDevArgs are the flags the bench adds to `geth --dev` beyond the data
// directory and ports: no peers, and transaction-pool limits raised so that
// the pool never refuses a run's backlog (geth's defaults keep 5,120 pending
// transactions, fewer than one round of a 10,000-sender workload).
var GethDevArgs = []string{
	"--nodiscover", "--maxpeers", "0", "--ipcdisable",
	"--txpool.globalslots", "1000000", "--txpool.globalqueue", "1000000",
	"--txpool.accountslots", "4096", "--txpool.accountqueue", "4096",
	"--rpc.batch-request-limit", "1000", "--rpc.batch-response-max-size", "100000000",
	"--verbosity", "2",
}

// FindGeth returns the geth binary to run: path if set, else a geth next to
// the running executable (bin/geth beside bin/kestrel), else one on PATH.
func FindGeth(path string) (string, error) {
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("geth binary: %w", err)
		}
		return path, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "geth")
		if fileExists(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("geth"); err == nil {
		return p, nil
	}
	return "", errors.New("no geth binary found next to kestrel or on PATH: build it with `make geth` " +
		"(go build -o bin/geth github.com/ethereum/go-ethereum/cmd/geth) or pass --bench.geth")
}

// freePort asks the kernel for a free loopback TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartGethDev initialises a fresh data directory under parent (os.TempDir()
// if empty) with g and starts `geth --dev` on it. The block gas limit stays
// g's (--miner.gaslimit). The process's output goes to geth.log in its
// directory, whose tail is quoted when it fails.
func StartGethDev(ctx context.Context, bin, parent string, g *chain.Genesis) (*GethDev, error) {
	dir, err := os.MkdirTemp(parent, "kestrel-bench-geth-")
	if err != nil {
		return nil, err
	}
	n := &GethDev{dir: dir, logPath: filepath.Join(dir, "geth.log"), exited: make(chan struct{})}
	fail := func(err error) (*GethDev, error) { return nil, errors.Join(err, n.Stop()) }
	gen, err := json.Marshal(GethGenesis(g))
	if err != nil {
		return fail(fmt.Errorf("geth genesis: %w", err))
	}
	genPath := filepath.Join(dir, "genesis.json")
	if err := os.WriteFile(genPath, gen, 0o644); err != nil {
		return fail(err)
	}
	data := filepath.Join(dir, "data")
	if out, err := exec.CommandContext(ctx, bin, "init", "--datadir", data, genPath).CombinedOutput(); err != nil {
		return fail(fmt.Errorf("geth init: %w: %s", err, tail(out, 2000)))
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return fail(err)
		}
	}
	args := append([]string{"--dev", "--datadir", data,
		"--http", "--http.addr", "127.0.0.1", "--http.port", strconv.Itoa(ports[0]), "--http.api", "eth,net,web3,txpool",
		"--authrpc.addr", "127.0.0.1", "--authrpc.port", strconv.Itoa(ports[1]), "--port", strconv.Itoa(ports[2]),
		"--miner.gaslimit", strconv.FormatUint(g.GasLimit, 10)}, GethDevArgs...)
	logf, err := os.Create(n.logPath)
	if err != nil {
		return fail(err)
	}
	n.cmd = exec.Command(bin, args...)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	dieWithParent(n.cmd)
	if err := n.cmd.Start(); err != nil {
		logf.Close()
		n.cmd = nil
		return fail(fmt.Errorf("start geth: %w", err))
	}
	go func() {
		n.waitErr = n.cmd.Wait()
		logf.Close()
		close(n.exited)
	}()
	n.url = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	c, err := newRPCClient(n.url, 2)
	if err != nil {
		return fail(err)
	}
	defer c.close()
	deadline := time.Now().Add(time.Minute)
	for {
		var id string
		if err := c.call(&id, "eth_chainId"); err == nil {
			if want := fmt.Sprintf("0x%x", g.ChainID); id != want {
				return fail(fmt.Errorf("geth answers chain id %s, want %s", id, want))
			}
			return n, nil
		}
		select {
		case <-n.exited:
			return fail(fmt.Errorf("geth exited at start: %v: %s", n.waitErr, n.logTail()))
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("geth did not answer on %s within a minute: %s", n.url, n.logTail()))
		}
	}
}

// URL is geth's JSON-RPC HTTP endpoint.
func (n *GethDev) URL() string { return n.url }

// PID is the geth process's id.
func (n *GethDev) PID() int { return n.cmd.Process.Pid }

func (n *GethDev) logTail() string {
	b, _ := os.ReadFile(n.logPath)
	return tail(b, 2000)
}

func tail(b []byte, max int) string {
	b = bytes.TrimSpace(b)
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// CPU is the CPU time (user + system) the geth process has used so far.
func (n *GethDev) CPU() time.Duration { return procCPU(n.cmd.Process.Pid) }

// PeakRSS is the geth process's peak resident set size in bytes.
func (n *GethDev) PeakRSS() uint64 { return procPeakRSS(n.cmd.Process.Pid) }

// Stop interrupts geth (SIGINT, as Ctrl-C would), waits up to a minute for it
// to exit (then kills it) and removes its directory.
func (n *GethDev) Stop() error {
	var err error
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-n.exited:
		case <-time.After(time.Minute):
			_ = n.cmd.Process.Kill()
			<-n.exited
			err = errors.New("geth did not exit within a minute of SIGINT; killed")
		}
		n.cmd = nil
	}
	return errors.Join(err, os.RemoveAll(n.dir))
}

// procCPU reads a process's user + system CPU time from /proc (0 where there
// is no /proc).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start after ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// resetPeakRSS resets this process's peak resident set size (VmHWM) to its
// current size (Linux: "5" into /proc/self/clear_refs); elsewhere it does
// nothing, and the peak stays the process's lifetime peak.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// procPeakRSS reads a process's peak resident set size (VmHWM) from /proc.
func procPeakRSS(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
