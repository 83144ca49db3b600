package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// CheckTools says what is missing to build the image and boot VMs: root,
// and the tools `make vm-deps` installs.
func CheckTools() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (mmdebstrap, network namespaces, taps)")
	}
	for _, p := range []string{"qemu-system-x86_64", "qemu-img", "mmdebstrap", "ssh", "scp"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("%s missing (needed to build and boot the VMs): run `make vm-deps` as root", p)
		}
	}
	return nil
}

// BuildImage runs script (vm/build-image.sh: a build of minutes, or the
// cached image), its progress to log, and returns the image's directory,
// the last line it prints.
func BuildImage(ctx context.Context, script string, log io.Writer) (string, error) {
	cmd := exec.CommandContext(ctx, script)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w", script, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if lines[len(lines)-1] == "" {
		return "", fmt.Errorf("%s printed no image directory", script)
	}
	return lines[len(lines)-1], nil
}
