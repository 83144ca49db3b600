package bench

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where a report was measured. Fields that could not be
// read are empty.
type Machine struct {
	Hostname  string `json:"hostname"`
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemoryMiB int    `json:"memory_mib"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	OVS       string `json:"ovs"`
	Commit    string `json:"commit"` // git describe --always --dirty of the working tree
	LoadStart string `json:"load_start"`
	LoadEnd   string `json:"load_end"`
}

// Describe reads the machine's description from /proc, the Go runtime,
// ovs-vswitchd --version and git. LoadEnd is left for the caller (see
// LoadAvg), to fill when the run ends.
func Describe(ctx context.Context) Machine {
	m := Machine{
		Cores:     runtime.NumCPU(),
		Go:        runtime.Version(),
		Kernel:    readTrim("/proc/sys/kernel/osrelease"),
		LoadStart: LoadAvg(),
	}
	m.Hostname, _ = os.Hostname()
	m.CPU = procField("/proc/cpuinfo", "model name")
	if kb, err := strconv.Atoi(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB")); err == nil {
		m.MemoryMiB = kb / 1024
	}
	m.OVS = firstLine(command(ctx, "ovs-vswitchd", "--version"))
	m.Commit = command(ctx, "git", "describe", "--always", "--dirty")
	return m
}

// LoadAvg returns the 1, 5 and 15 minute load averages as the kernel
// prints them ("0.52 0.31 0.20").
func LoadAvg() string {
	f := strings.Fields(readTrim("/proc/loadavg"))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// procField returns the value of the first "key : value" line of a /proc
// file.
func procField(path, key string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func command(ctx context.Context, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
