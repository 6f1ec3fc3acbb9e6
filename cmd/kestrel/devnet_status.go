package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// statusSample is the devnet's counters at one moment; the status line shows
// the difference between two.
type statusSample struct {
	At time.Time
	// Head is the newest sealed block.
	Head uint64
	// MiniBlocks and Txs count what the sequencer produced since it started.
	MiniBlocks, Txs uint64
	// ReplicaLag is, per replica, how many mini-blocks it is behind the
	// sequencer.
	ReplicaLag []uint64
	// LoadOn reports whether the background load runs; LoadSent and
	// LoadFailed count its accepted and refused or lost transactions.
	LoadOn               bool
	LoadSent, LoadFailed uint64
}

// formatStatus is the status line for the period from prev to cur, e.g.
//
//	block 1234 | 21 mini-blocks/s | 20 tx/s | load 20/s | replica lag 0, 1 mini-blocks
func formatStatus(prev, cur statusSample) string {
	secs := cur.At.Sub(prev.At).Seconds()
	perSec := func(a, b uint64) string {
		if secs <= 0 || b < a {
			return "0"
		}
		v := float64(b-a) / secs
		if v > 0 && v < 10 {
			return strconv.FormatFloat(v, 'f', 1, 64)
		}
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "block %d | %s mini-blocks/s | %s tx/s", cur.Head, perSec(prev.MiniBlocks, cur.MiniBlocks), perSec(prev.Txs, cur.Txs))
	if cur.LoadOn {
		fmt.Fprintf(&b, " | load %s/s", perSec(prev.LoadSent, cur.LoadSent))
		if cur.LoadFailed > prev.LoadFailed {
			fmt.Fprintf(&b, " (%d refused)", cur.LoadFailed-prev.LoadFailed)
		}
	} else {
		b.WriteString(" | load off")
	}
	if len(cur.ReplicaLag) > 0 {
		b.WriteString(" | replica lag ")
		for i, lag := range cur.ReplicaLag {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.FormatUint(lag, 10))
		}
		b.WriteString(" mini-blocks")
	}
	return b.String()
}

// clearLine returns a terminal's cursor to the start of the line and erases it.
const clearLine = "\r\033[2K"

// statusLine prints the devnet's status. On a terminal it redraws one line in
// place every second, and log lines (logWriter) erase it before they are
// written and draw it again after; elsewhere it prints a line every 10 s.
// Its methods are safe for concurrent use.
type statusLine struct {
	out      io.Writer
	tty      bool
	interval time.Duration

	mu      sync.Mutex
	line    string // the line drawn on the terminal now; "" when none
	started bool

	stopOnce sync.Once
	quit     chan struct{}
	done     chan struct{}
}

func newStatusLine(out io.Writer, tty bool) *statusLine {
	s := &statusLine{out: out, tty: tty, interval: 10 * time.Second, quit: make(chan struct{}), done: make(chan struct{})}
	if tty {
		s.interval = time.Second
	}
	return s
}

// isTerminal reports whether f is a character device (a terminal, or
// /dev/null, where redrawing does no harm).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// start prints the status every interval until stop, from sample's figures.
func (s *statusLine) start(sample func() statusSample) {
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.interval)
		defer t.Stop()
		prev := sample()
		for {
			select {
			case <-s.quit:
				return
			case <-t.C:
			}
			cur := sample()
			s.show(formatStatus(prev, cur))
			prev = cur
		}
	}()
}

// stop ends the updates; on a terminal the last line is drawn once more (over
// the "^C" the terminal echoed) and ended by a newline.
// It may be called more than once, and without start.
func (s *statusLine) stop() {
	s.stopOnce.Do(func() {
		close(s.quit)
		s.mu.Lock()
		started := s.started
		s.mu.Unlock()
		if started {
			<-s.done
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.line != "" {
			io.WriteString(s.out, clearLine+s.line+"\n")
			s.line = ""
		}
	})
}

// show prints line: in place on a terminal, as a new line elsewhere.
func (s *statusLine) show(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.tty {
		io.WriteString(s.out, line+"\n")
		return
	}
	io.WriteString(s.out, clearLine+line)
	s.line = line
}

// logWriter wraps the log's writer w so that, when both are on the terminal
// (sameScreen), each log line is written on a clean line with the status line
// drawn again below it.
func (s *statusLine) logWriter(w io.Writer, sameScreen bool) io.Writer {
	if !s.tty || !sameScreen {
		return w
	}
	return statusLogWriter{s: s, w: w}
}

type statusLogWriter struct {
	s *statusLine
	w io.Writer
}

func (l statusLogWriter) Write(p []byte) (int, error) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.s.line != "" {
		io.WriteString(l.s.out, clearLine)
	}
	n, err := l.w.Write(p)
	if l.s.line != "" {
		io.WriteString(l.s.out, l.s.line)
	}
	return n, err
}
