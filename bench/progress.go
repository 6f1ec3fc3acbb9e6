package bench

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// LiveProgress is the bench's progress display: log lines written through it
// scroll as usual, and below them one status line (the phase, its progress,
// rate, elapsed time and ETA) is redrawn in place every half second on a
// terminal. Elsewhere (a pipe, a file) the status is printed as its own line
// every ten seconds.
type LiveProgress struct {
	mu       sync.Mutex
	out      io.Writer
	tty      bool
	start    time.Time
	phase    string
	phaseN   int
	phases   int
	total    int64 // units of the current task (0: unknown)
	done     int64
	unit     string
	taskAt   time.Time
	shown    bool // a status line is on screen (tty)
	lastLine time.Time
	stop     chan struct{}
	stopped  sync.WaitGroup
}

// NewLiveProgress writes to out; tty says whether out is a terminal (see
// IsTerminal). phases is the number of phases the run has.
func NewLiveProgress(out io.Writer, tty bool, phases int) *LiveProgress {
	p := &LiveProgress{out: out, tty: tty, start: time.Now(), phases: phases, stop: make(chan struct{})}
	p.stopped.Add(1)
	go p.loop()
	return p
}

// IsTerminal reports whether f is a character device (a terminal).
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *LiveProgress) loop() {
	defer p.stopped.Done()
	every := 500 * time.Millisecond
	if !p.tty {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.draw()
			p.mu.Unlock()
		}
	}
}

// Phase starts the next phase.
func (p *LiveProgress) Phase(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phaseN++
	p.phase, p.total, p.done, p.unit, p.taskAt = name, 0, 0, "", time.Now()
	p.draw()
}

// Task sets what the current phase counts: total units (transactions, calls).
func (p *LiveProgress) Task(name string, total int64, unit string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase, p.total, p.done, p.unit, p.taskAt = name, total, 0, unit, time.Now()
}

// Set records the units done so far in the current task.
func (p *LiveProgress) Set(done int64) {
	p.mu.Lock()
	p.done = done
	p.mu.Unlock()
}

// Status is the status line's text.
func (p *LiveProgress) Status(now time.Time) string {
	s := fmt.Sprintf("[%d/%d] %s", p.phaseN, p.phases, p.phase)
	if p.total > 0 {
		el := now.Sub(p.taskAt)
		rate := float64(p.done) / el.Seconds()
		s += fmt.Sprintf(": %d/%d %s", p.done, p.total, p.unit)
		if p.done > 0 && el > 0 {
			s += fmt.Sprintf(", %.0f %s/s", rate, p.unit)
			if p.done < p.total {
				eta := time.Duration(float64(p.total-p.done) / rate * float64(time.Second))
				s += fmt.Sprintf(", ETA %v", eta.Round(time.Second))
			}
		}
	}
	return s + fmt.Sprintf(" (elapsed %v)", now.Sub(p.start).Round(time.Second))
}

func (p *LiveProgress) draw() {
	line := p.Status(time.Now())
	if p.tty {
		fmt.Fprintf(p.out, "\r\033[K%s", line)
		p.shown = true
		return
	}
	if time.Since(p.lastLine) >= 10*time.Second {
		fmt.Fprintln(p.out, "status: "+line)
		p.lastLine = time.Now()
	}
}

// Write prints a log line above the status line.
func (p *LiveProgress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.shown {
		fmt.Fprint(p.out, "\r\033[K")
		p.shown = false
	}
	n, err := p.out.Write(b)
	if p.tty && len(b) > 0 && b[len(b)-1] == '\n' {
		p.draw()
	}
	return n, err
}

// Close stops redrawing and leaves the last status on its own line.
func (p *LiveProgress) Close() {
	close(p.stop)
	p.stopped.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.shown {
		fmt.Fprintln(p.out)
		p.shown = false
	}
}
