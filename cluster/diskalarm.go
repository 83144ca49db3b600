package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sdn-dev/sdn/cluster/state"
)

// A full disk is an alarm, not a crash (docs/design.md, "A full disk"). A
// server watches the two files it writes, the state file and the raft log:
//
//   - before a write is proposed, the free space of their file systems
//     (statfs): below minFreeBytes the write is refused, nothing changed;
//   - every write to them: a write that fails (ENOSPC from bbolt under the
//     FSM, or under raft's log and stable store) raises an alarm for that
//     file, and the next write that succeeds clears it.
//
// While an alarm is up the server refuses writes with an error naming the
// device and the file (DiskError) instead of crashing or saying "no raft
// leader is known"; stale reads go on. Nothing needs a restart: the FSM
// retries the batch it could not write, raft retries its log, and the alarm
// clears by itself once space returns.

// minFreeBytes is the free space a server keeps on the file systems of its
// state file and raft log: below it, writes are refused before they reach
// raft, so that raft's own small writes (its term and vote, barrier and
// liveness entries) and entries already committed still find room. A write
// larger than what is left may still fail when it is written; the alarm
// catches that.
const minFreeBytes = maxBatchBytes

// Alarm is one file of a server's data dir that cannot take writes: its file
// system is (nearly) full, or writing it fails.
type Alarm struct {
	// File is the file's path: DATA-DIR/state.db or DATA-DIR/raft/raft.db.
	File string
	// Device is the file system's source (e.g. /dev/sda1, or tmpfs),
	// Mount where it is mounted, FSType its type; empty when unknown.
	Device, Mount, FSType string
	// Free and Size are the file system's bytes free (for unprivileged
	// writers) and in all, when the alarm was read.
	Free, Size uint64
	// Err is the failed write's error; nil when the free-space check
	// raised the alarm.
	Err error
	// Since is when the alarm was raised.
	Since time.Time
}

// NoSpace reports whether the alarm is about space rather than another
// write error.
func (a Alarm) NoSpace() bool { return a.Err == nil || noSpace(a.Err) }

// Problem says what is wrong, naming the device and the file: "no space
// left on device /dev/sdb1 mounted at /var (ext4, 12 KiB of 20 GiB free)
// for /var/lib/sdn/state.db".
func (a Alarm) Problem() string {
	dev := "the file system of " + filepath.Dir(a.File)
	if a.Device != "" {
		dev = fmt.Sprintf("device %s mounted at %s", a.Device, a.Mount)
	}
	space := fmt.Sprintf("%s of %s free", formatBytes(a.Free), formatBytes(a.Size))
	if a.Err == nil {
		space += fmt.Sprintf(", below the %s sdnd keeps free", formatBytes(minFreeBytes))
	}
	if a.FSType != "" {
		space = a.FSType + ", " + space
	}
	if a.NoSpace() {
		return fmt.Sprintf("no space left on %s (%s) for %s", dev, space, a.File)
	}
	return fmt.Sprintf("cannot write %s on %s (%s): %v", a.File, dev, space, a.Err)
}

// Remedy says what to do about the alarm.
func (a Alarm) Remedy() string {
	fix := "free space on that device"
	if !a.NoSpace() {
		fix = "fix the cause (sdnd's log has each failed write)"
	}
	return fix + "; writes resume by themselves, without a restart, and reads go on meanwhile (--stale)"
}

// DiskError refuses a write because of a server's disk alarm, and says what
// became of the write.
type DiskError struct {
	Server string
	Alarm  Alarm
	// Outcome is what became of the write (outcome* below).
	Outcome string
}

const (
	// outcomeRefused: the write was refused before it reached raft.
	outcomeRefused = "writes are refused, and this one changed nothing"
	// outcomeNotStored: the leader could not append it to its log.
	outcomeNotStored = "this write was not stored and changed nothing"
	// outcomeUnknown: it may be committed already; the FSM cannot apply.
	outcomeUnknown = "the server cannot apply its raft log to its state, so whether this write takes effect is unknown: if it was committed it is applied once the state can be written again; check with `sdnctl get` then"
	// outcomeNoLeader: no leader is known, and this server has an alarm.
	outcomeNoLeader = "no raft leader is known, and this server cannot serve as one while it cannot write there; writes and reads that must be current are refused, nothing changed"
	// outcomeReadLog: a linearizable read needs an entry the log cannot
	// take.
	outcomeReadLog = "the server cannot append to its raft log, so it cannot answer reads that must be current; ask with --stale for its state as it is"
	// outcomeRead: a linearizable read cannot be answered.
	outcomeRead = "the server cannot apply its raft log to its state, so it cannot answer reads that must be current; ask with --stale for its state as it is"
)

func (e *DiskError) Error() string {
	return fmt.Sprintf("server %s: %s: %s; %s", e.Server, e.Alarm.Problem(), e.Outcome, e.Alarm.Remedy())
}

// noSpace reports whether err says a file system is full (or a quota).
func noSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// ioFailure reports whether err is the operating system's refusal of a
// write (rather than, say, a store closed at shutdown).
func ioFailure(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno)
}

// diskAlarm holds a server's alarms about the files it writes.
type diskAlarm struct {
	server string
	files  []string // the state file, the raft log
	log    *slog.Logger

	// onAlarm, when set, runs (in its own goroutine) each time an alarm
	// goes up: the server hands leadership over (Server.handOverForDisk).
	onAlarm func()

	mu     sync.Mutex
	raised map[string]*Alarm    // by file: raised by a failed write
	low    map[string]time.Time // by file: since when the free-space check refuses writes
	wake   chan struct{}        // closed (and replaced) when an alarm is raised
}

func newDiskAlarm(server string, log *slog.Logger, files ...string) *diskAlarm {
	return &diskAlarm{server: server, files: files, log: log, raised: map[string]*Alarm{}, low: map[string]time.Time{}, wake: make(chan struct{})}
}

// failed records a failed write to file: it raises the file's alarm (and
// logs it once).
func (d *diskAlarm) failed(file string, err error) {
	if err == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if a, up := d.raised[file]; up {
		a.Err = err
		return
	}
	a := d.read(file, true)
	a.Err, a.Since = err, time.Now()
	d.raised[file] = &a
	d.log.Error("disk alarm: "+a.Problem()+"; this server refuses writes until it clears; "+a.Remedy(), "file", file, "err", err)
	close(d.wake)
	d.wake = make(chan struct{})
	d.raise()
}

// written records a write to file that succeeded: its alarm clears.
func (d *diskAlarm) written(file string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a, up := d.raised[file]; up {
		delete(d.raised, file)
		d.log.Info("disk alarm cleared: "+file+" can be written again; writes resume", "file", file, "raised_for", time.Since(a.Since).Round(time.Second).String())
	}
}

// raise runs onAlarm; d.mu is held.
func (d *diskAlarm) raise() {
	if d.onAlarm != nil {
		go d.onAlarm()
	}
}

// changed is closed at the next raised alarm.
func (d *diskAlarm) changed() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.wake
}

// raisedFor returns file's alarm raised by a failed write, if any.
func (d *diskAlarm) raisedFor(file string) (Alarm, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a, up := d.raised[file]; up {
		return d.refresh(*a), true
	}
	return Alarm{}, false
}

// Alarms lists the alarms up now, in the order of the files: those raised
// by failed writes, and files whose file system is below minFreeBytes.
func (d *diskAlarm) Alarms() []Alarm {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Alarm
	for _, f := range d.files {
		if a, up := d.raised[f]; up {
			out = append(out, d.refresh(*a))
			continue
		}
		if a := d.read(f, false); a.Size > 0 && a.Free < minFreeBytes {
			if since, ok := d.low[f]; ok {
				a.Since = since
			}
			out = append(out, a)
		}
	}
	return out
}

// check is the free-space check before a write is proposed: a raised alarm,
// or a file system below minFreeBytes, refuses it.
func (d *diskAlarm) check() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range d.files {
		if a, up := d.raised[f]; up {
			return &DiskError{Server: d.server, Alarm: d.refresh(*a), Outcome: outcomeRefused}
		}
	}
	for _, f := range d.files {
		a := d.read(f, false)
		if a.Size == 0 || a.Free >= minFreeBytes {
			if _, was := d.low[f]; was {
				delete(d.low, f)
				d.log.Info("disk alarm cleared: the file system of "+f+" has room again; writes resume", "file", f, "free", formatBytes(a.Free))
			}
			continue
		}
		if since, was := d.low[f]; was {
			a.Since = since
		} else {
			d.low[f] = a.Since
			d.log.Error("disk alarm: "+a.Problem()+"; this server refuses writes until it clears; "+a.Remedy(), "file", f)
			d.raise()
		}
		return &DiskError{Server: d.server, Alarm: a, Outcome: outcomeRefused}
	}
	return nil
}

// refresh updates an alarm's free space.
func (d *diskAlarm) refresh(a Alarm) Alarm {
	a.Free, a.Size = space(a.File)
	return a
}

// read describes file's file system now: its free space (Size is 0 when
// statfs fails) and, when its space is below minFreeBytes or always is
// set, where it is mounted (which takes reading /proc/self/mountinfo: not
// on every proposal).
func (d *diskAlarm) read(file string, always bool) Alarm {
	a := Alarm{File: file, Since: time.Now()}
	a.Free, a.Size = space(file)
	if always || (a.Size > 0 && a.Free < minFreeBytes) {
		a.Device, a.Mount, a.FSType = mountOf(filepath.Dir(file))
	}
	return a
}

// space is the free (for unprivileged writers) and total bytes of the file
// system file is on; 0, 0 when statfs fails.
func space(file string) (free, size uint64) {
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(file), &st); err != nil {
		return 0, 0
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize)
}

// formatBytes renders a byte count for people: 512 B, 12 KiB, 3.5 MiB.
func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	s := fmt.Sprintf("%.1f", v)
	if v >= 10 || s[len(s)-2:] == ".0" {
		s = fmt.Sprintf("%.0f", v)
	}
	return s + " " + []string{"KiB", "MiB", "GiB", "TiB", "PiB"}[i]
}

// writeRetry is how long the FSM waits before it tries again a batch the
// state file could not take.
const writeRetry = 500 * time.Millisecond

// stateWatch is the FSM's fsm.WriteWatcher: a batch the state file cannot
// take raises the alarm and is tried again every writeRetry until it is
// written, or until the server stops (halt).
type stateWatch struct {
	alarm *diskAlarm
	halt  <-chan struct{}
}

func (w stateWatch) WriteFailed(path string, err error) bool {
	var damaged *state.DamagedError
	if errors.As(err, &damaged) {
		// Not the disk: the file is damaged, the server stops (recover.go)
		// and its next start rebuilds the file. Trying again cannot help.
		return false
	}
	w.alarm.failed(path, err)
	select {
	case <-w.halt:
		return false
	case <-time.After(writeRetry):
		return true
	}
}

func (w stateWatch) Written(path string) { w.alarm.written(path) }
