package rpc

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metricer records what the server does. Set it as Config.Metrics; nil records
// nothing. Implementations must be safe for concurrent use: the server calls
// them from every request goroutine, HTTP and WebSocket alike, and must not
// block.
type Metricer interface {
	// RecordRequest is called once per answered call or notification (each
	// batch item counts), after it ran or was refused, and once per body
	// refused as a whole (parse error, batch too large) with method
	// MethodUnknown. method is a registered method name or MethodUnknown, so
	// label values stay bounded. code is the JSON-RPC error code of the answer,
	// 0 for a result. elapsed is the execution time (for a request refused for
	// want of a concurrency slot: the time it waited). bytes is the size of the
	// answer object (0 for notifications).
	RecordRequest(method string, code int, elapsed time.Duration, bytes int)
	// RecordInFlight adds delta (+1 when a request starts executing, -1 when it
	// ends) to the number of executing requests.
	RecordInFlight(delta int)
}

// WSMetricer is an optional extension of Metricer for the WebSocket transport.
type WSMetricer interface {
	// RecordWSConn adds delta to the open connections.
	RecordWSConn(delta int)
	// RecordWSClosed counts a closed connection by reason (a fixed set: peer,
	// slow_reader, unread_answers, frame_too_large, server_stop, error).
	RecordWSClosed(reason string)
	// RecordWSSub adds delta to the live subscriptions of a kind (newHeads,
	// logs, newPendingTransactions, miniBlocks).
	RecordWSSub(kind string, delta int)
	// RecordWSQueued adds delta to the bytes queued for WebSocket writers.
	RecordWSQueued(delta int)
}

// MethodUnknown is the method label of requests naming no registered method
// (and of invalid ones), so that clients cannot create label values.
const MethodUnknown = "unknown"

// NoopMetrics records nothing.
type NoopMetrics struct{}

func (NoopMetrics) RecordRequest(string, int, time.Duration, int) {}
func (NoopMetrics) RecordInFlight(int)                            {}

// codeClass is the errors_total label of a JSON-RPC error code: a fixed set.
func codeClass(code int) string {
	switch code {
	case CodeParseError:
		return "parse_error"
	case CodeInvalidRequest:
		return "invalid_request"
	case CodeMethodNotFound:
		return "method_not_found"
	case CodeInvalidParams:
		return "invalid_params"
	case CodeInternal:
		return "internal_error"
	case CodeTimeout:
		return "timeout"
	case CodeTooLarge:
		return "response_too_large"
	case CodeLimitExceeded:
		return "limit_exceeded"
	case CodeReverted:
		return "reverted"
	case CodeTxSyncTimeout:
		return "tx_sync_timeout"
	}
	if code <= -32000 && code >= -32099 {
		return "server_error" // implementation-defined, mostly backend errors (-32000)
	}
	return "other"
}

// PromMetrics exports the server's metrics as kestrel_rpc_* Prometheus series:
//
//	kestrel_rpc_requests_total{method}              answered calls and notifications
//	kestrel_rpc_errors_total{method,class}          error answers by codeClass
//	kestrel_rpc_request_duration_seconds{method}    execution time
//	kestrel_rpc_requests_in_flight                  requests executing now
//	kestrel_rpc_response_bytes_total{method}        bytes of answer objects
//	kestrel_rpc_response_size_bytes                 distribution of answer object sizes
//
// The method label takes the names registered when NewPromMetrics ran, plus
// MethodUnknown for every other name.
type PromMetrics struct {
	errors   *prometheus.CounterVec
	inFlight prometheus.Gauge
	size     prometheus.Histogram
	wsConns  prometheus.Gauge
	wsClosed *prometheus.CounterVec
	wsSubs   *prometheus.GaugeVec
	wsQueued prometheus.Gauge
	// byMethod holds each method's series, created up front: read-only after
	// NewPromMetrics, so lookups need no lock.
	byMethod map[string]*methodSeries
}

type methodSeries struct {
	requests prometheus.Counter
	bytes    prometheus.Counter
	latency  prometheus.Observer
}

// NewPromMetrics creates the collectors and registers them with reg (nil: not
// registered, for tests). Like prometheus.MustRegister it panics when reg holds
// collectors of the same names already.
func NewPromMetrics(reg prometheus.Registerer) *PromMetrics {
	const ns, sub = "kestrel", "rpc"
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "requests_total",
		Help: "JSON-RPC calls and notifications answered (batch items count one each), by method."}, []string{"method"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "errors_total",
		Help: "JSON-RPC error answers by method and error code class."}, []string{"method", "class"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
		Help:    "Execution time of a JSON-RPC call, by method.",
		Buckets: []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}},
		[]string{"method"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "response_bytes_total",
		Help: "Bytes of JSON-RPC answer objects (before compression), by method."}, []string{"method"})
	m := &PromMetrics{
		errors: errs,
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "requests_in_flight",
			Help: "JSON-RPC requests executing now."}),
		size: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "response_size_bytes",
			Help: "Size of JSON-RPC answer objects (before compression).", Buckets: prometheus.ExponentialBuckets(64, 4, 11)}),
		byMethod: make(map[string]*methodSeries, len(methods)+1),
		wsConns: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "ws_connections",
			Help: "Open WebSocket connections."}),
		wsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "ws_closed_total",
			Help: "Closed WebSocket connections by reason (peer, slow_reader, unread_answers, frame_too_large, server_stop, error)."}, []string{"reason"}),
		wsSubs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "ws_subscriptions",
			Help: "Live eth_subscribe subscriptions by kind."}, []string{"kind"}),
		wsQueued: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "ws_queued_bytes",
			Help: "Answer and notification bytes queued for WebSocket writers."}),
	}
	add := func(name string) {
		ms := &methodSeries{
			requests: requests.WithLabelValues(name),
			bytes:    bytes.WithLabelValues(name),
			latency:  latency.WithLabelValues(name),
		}
		m.byMethod[name] = ms
	}
	for name := range methods {
		add(name)
	}
	add(MethodUnknown)
	if reg != nil {
		reg.MustRegister(requests, errs, latency, bytes, m.inFlight, m.size, m.wsConns, m.wsClosed, m.wsSubs, m.wsQueued)
	}
	return m
}

// RecordRequest implements Metricer.
func (m *PromMetrics) RecordRequest(method string, code int, elapsed time.Duration, bytes int) {
	ms := m.byMethod[method]
	if ms == nil {
		method, ms = MethodUnknown, m.byMethod[MethodUnknown]
	}
	ms.requests.Inc()
	ms.latency.Observe(elapsed.Seconds())
	ms.bytes.Add(float64(bytes))
	m.size.Observe(float64(bytes))
	if code != 0 {
		// Error series appear once used (method and class are both bounded).
		m.errors.WithLabelValues(method, codeClass(code)).Inc()
	}
}

// RecordInFlight implements Metricer.
func (m *PromMetrics) RecordInFlight(delta int) { m.inFlight.Add(float64(delta)) }

// RecordWSConn implements WSMetricer.
func (m *PromMetrics) RecordWSConn(delta int) { m.wsConns.Add(float64(delta)) }

// RecordWSClosed implements WSMetricer.
func (m *PromMetrics) RecordWSClosed(reason string) { m.wsClosed.WithLabelValues(reason).Inc() }

// RecordWSSub implements WSMetricer.
func (m *PromMetrics) RecordWSSub(kind string, delta int) {
	m.wsSubs.WithLabelValues(kind).Add(float64(delta))
}

// RecordWSQueued implements WSMetricer.
func (m *PromMetrics) RecordWSQueued(delta int) { m.wsQueued.Add(float64(delta)) }

type noWSMetrics struct{}

func (noWSMetrics) RecordWSConn(int)        {}
func (noWSMetrics) RecordWSClosed(string)   {}
func (noWSMetrics) RecordWSSub(string, int) {}
func (noWSMetrics) RecordWSQueued(int)      {}
