package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Every setting in the config file is type-checked against its flag: a
// number was taken as a path (data_dir = 5 made a directory named "5"),
// and a quoted number as a count.
func TestConfigFileTypes(t *testing.T) {
	huge := strings.Repeat("x", 1<<20)
	for _, tc := range []struct{ name, src, want string }{
		{"number for a path", "dev = true\ndata_dir = 5\n",
			`/c.hcl:2,12-13: Invalid value for "data_dir"; Want a string in quotes, e.g. data_dir = "/var/lib/sdnd", got number.`},
		{"number for a name", "dev = true\nnode-name = 7\n",
			`/c.hcl:2,13-14: Invalid value for "node-name"; Want a string in quotes, e.g. node-name = "...", got number.`},
		{"number for a duration", "dev = true\nnode-down-after = 30\n",
			`/c.hcl:2,19-21: Invalid value for "node-down-after"; Want a duration in quotes, e.g. node-down-after = "15s", got number.`},
		{"string for a count", "server = true\nbootstrap-expect = \"3\"\n",
			`/c.hcl:2,20-23: Invalid value for "bootstrap-expect"; Want a whole number without quotes, e.g. bootstrap-expect = 3, got string.`},
		{"fraction for a count", "server = true\nbootstrap-expect = 2.5\n",
			`/c.hcl:2,20-23: Invalid value for "bootstrap-expect"; Want a whole number without quotes, e.g. bootstrap-expect = 3, got 2.5.`},
		{"bool for a string", "dev = true\nlog_level = true\n",
			`/c.hcl:2,13-17: Invalid value for "log_level"; Want a string in quotes, e.g. log_level = "info", got bool.`},
		{"expression", "dev = true\ndata_dir = \"/var/\" + \"lib\"\n",
			`/c.hcl:2,20-21: Expressions are not supported; "+" is an operator`},
		{"interpolation", "dev = true\ndata_dir = \"/var/${x}\"\n",
			`/c.hcl:2,18-20: Interpolation is not supported`},
		{"function", "dev = true\ndata_dir = upper(\"x\")\n",
			`/c.hcl:2,12-22: Not a literal value; The value of "data_dir" is a call of the function "upper"`},
		{"deep", "server = true\nlisten = " + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "\n",
			`/c.hcl:2,42-43: Nesting too deep; Brackets nest more than 32 deep here`},
		{"100,000 deep", "server = true\nlisten = " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n",
			`/c.hcl:2,42-43: Nesting too deep`},
		{"huge duration", "dev = true\nnode-down-after = \"" + huge + "\"\n",
			`/c.hcl:2,19-1048597: Invalid value for "node-down-after"; Want a duration in quotes, e.g. node-down-after = "15s", got "` + huge[:64] + `"... (1048576 bytes).`},
	} {
		_, err := parseFlags([]string{"--config", "/c.hcl"}, testEnv(map[string]string{"/c.hcl": tc.src}))
		switch {
		case err == nil:
			t.Errorf("%s: no error", tc.name)
		case !strings.HasPrefix(err.Error(), tc.want):
			t.Errorf("%s: got %.400q\nwant %q...", tc.name, err, tc.want)
		case len(err.Error()) > 1000:
			t.Errorf("%s: a %d-byte error", tc.name, len(err.Error()))
		}
	}
}

// --config of a FIFO is refused at once instead of waiting for a writer.
func TestConfigFileFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "sdnd.hcl")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	e := testEnv(nil)
	e.readFile = machineEnv().readFile
	done := make(chan error, 1)
	go func() { _, err := parseFlags([]string{"--config", fifo}, e); done <- err }()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		if w, oerr := os.OpenFile(fifo, os.O_WRONLY, 0); oerr == nil {
			w.Close()
		}
		t.Fatalf("parseFlags blocked on the FIFO until it was opened for writing: %v", <-done)
	}
	want := "--config: " + fifo + " is a named pipe (FIFO); only regular files are read, so copy what it holds into a file and name that."
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}
