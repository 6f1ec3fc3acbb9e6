package sequencer

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kestrel-l2/kestrel/core/exec"
)

// Metricer records what the sequencer does. Implementations must be safe for
// concurrent use.
type Metricer interface {
	// RecordMiniBlock is called for each durable mini-block.
	RecordMiniBlock(txs int, gasUsedInBlock uint64, exec, fsync time.Duration)
	// RecordBlock is called for each sealed block.
	RecordBlock(number uint64, txs int, gasUsed uint64, seal time.Duration)
	// RecordDropped counts transactions the executor refused.
	RecordDropped(n int)
	// RecordPool reports the mempool's size.
	RecordPool(pending, queued int)
}

// NoopMetrics records nothing.
type NoopMetrics struct{}

func (NoopMetrics) RecordMiniBlock(int, uint64, time.Duration, time.Duration) {}
func (NoopMetrics) RecordBlock(uint64, int, uint64, time.Duration)            {}
func (NoopMetrics) RecordDropped(int)                                         {}
func (NoopMetrics) RecordPool(int, int)                                       {}

// PromMetrics exports the sequencer's metrics in Prometheus format.
type PromMetrics struct {
	registry   *prometheus.Registry
	miniBlocks prometheus.Counter
	txs        prometheus.Counter
	dropped    prometheus.Counter
	execTime   prometheus.Histogram
	fsyncTime  prometheus.Histogram
	sealTime   prometheus.Histogram
	head       prometheus.Gauge
	blockTxs   prometheus.Histogram
	blockGas   prometheus.Gauge
	pending    prometheus.Gauge
	queued     prometheus.Gauge
}

// NewPromMetrics builds the metrics on a fresh registry (with Go runtime and
// process collectors).
func NewPromMetrics() *PromMetrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	ms := []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
	m := &PromMetrics{
		registry:   r,
		miniBlocks: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "kestrel", Name: "miniblocks_total", Help: "Durable mini-blocks."}),
		txs:        prometheus.NewCounter(prometheus.CounterOpts{Namespace: "kestrel", Name: "transactions_total", Help: "Transactions in durable mini-blocks."}),
		dropped:    prometheus.NewCounter(prometheus.CounterOpts{Namespace: "kestrel", Name: "transactions_dropped_total", Help: "Transactions the executor refused."}),
		execTime:   prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "kestrel", Name: "miniblock_exec_seconds", Help: "Execution time of a mini-block.", Buckets: ms}),
		fsyncTime:  prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "kestrel", Name: "miniblock_fsync_seconds", Help: "Synced log write of a mini-block.", Buckets: ms}),
		sealTime:   prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "kestrel", Name: "block_seal_seconds", Help: "State root and header of a block.", Buckets: ms}),
		head:       prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "kestrel", Name: "head_block", Help: "Newest sealed block."}),
		blockTxs:   prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "kestrel", Name: "block_transactions", Help: "Transactions per sealed block.", Buckets: prometheus.ExponentialBuckets(1, 4, 10)}),
		blockGas:   prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "kestrel", Name: "block_gas_used", Help: "Gas used by the newest sealed block."}),
		pending:    prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "kestrel", Name: "mempool_pending", Help: "Executable pooled transactions."}),
		queued:     prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "kestrel", Name: "mempool_queued", Help: "Pooled transactions waiting for a nonce gap."}),
	}
	for _, c := range []prometheus.Collector{m.miniBlocks, m.txs, m.dropped, m.execTime, m.fsyncTime, m.sealTime, m.head, m.blockTxs, m.blockGas, m.pending, m.queued} {
		f(c)
	}
	return m
}

// registerEngine exports the execution engine's counters.
func (m *PromMetrics) registerEngine(p *exec.Parallel) {
	counter := func(name, help string, get func(exec.ParallelStats) uint64) {
		m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "kestrel", Subsystem: "exec", Name: name, Help: help},
			func() float64 { return float64(get(p.Stats())) }))
	}
	counter("parallel_requests_total", "Mini-blocks executed by the parallel (Block-STM) engine.", func(s exec.ParallelStats) uint64 { return s.ParallelRequests })
	counter("sequential_requests_total", "Mini-blocks executed by the sequential engine (small, forced, predicted serial, measured faster, or fallback).", func(s exec.ParallelStats) uint64 { return s.SequentialRequests })
	counter("serial_predicted_total", "Mini-blocks run sequentially because inference predicted one chain of conflicts.", func(s exec.ParallelStats) uint64 { return s.SerialRequests })
	counter("measured_slower_total", "Mini-blocks run sequentially because that engine has measured faster for their size.", func(s exec.ParallelStats) uint64 { return s.CostlierRequests })
	counter("fallbacks_total", "Mini-blocks the parallel engine gave up on (internal error) and ran sequentially.", func(s exec.ParallelStats) uint64 { return s.Fallbacks })
	counter("executions_total", "Transaction executions by the parallel engine.", func(s exec.ParallelStats) uint64 { return s.Executions })
	counter("reexecutions_total", "Transaction executions beyond the first (conflicts).", func(s exec.ParallelStats) uint64 { return s.ReExecutions })
	counter("waits_total", "Executions held back by a predicted or aborted write of a lower transaction.", func(s exec.ParallelStats) uint64 { return s.Waits })
}

func (m *PromMetrics) RecordMiniBlock(txs int, _ uint64, exec, fsync time.Duration) {
	m.miniBlocks.Inc()
	m.txs.Add(float64(txs))
	m.execTime.Observe(exec.Seconds())
	m.fsyncTime.Observe(fsync.Seconds())
}

func (m *PromMetrics) RecordBlock(number uint64, txs int, gasUsed uint64, seal time.Duration) {
	m.head.Set(float64(number))
	m.blockTxs.Observe(float64(txs))
	m.blockGas.Set(float64(gasUsed))
	m.sealTime.Observe(seal.Seconds())
}

func (m *PromMetrics) RecordDropped(n int) { m.dropped.Add(float64(n)) }

func (m *PromMetrics) RecordPool(pending, queued int) {
	m.pending.Set(float64(pending))
	m.queued.Set(float64(queued))
}

// Handler serves the metrics.
func (m *PromMetrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// metricsServer serves /metrics on its own listener.
type metricsServer struct {
	srv *http.Server
	ln  net.Listener
}

func startMetrics(addr string, m *PromMetrics) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &metricsServer{srv: srv, ln: ln}, nil
}

func (m *metricsServer) stop(ctx context.Context) error {
	if err := m.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// MetricsAddr is the bound metrics address, or "" when metrics are off.
func (s *Sequencer) MetricsAddr() string {
	if s.promM == nil {
		return ""
	}
	return s.promM.ln.Addr().String()
}
