package cluster

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// mountOf finds the file system dir is on, from /proc/self/mountinfo: its
// source (the device, e.g. /dev/sda1, or tmpfs), its mount point and its
// type. All are empty when it cannot tell.
func mountOf(dir string) (device, mount, fstype string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", "", ""
	}
	path, err := filepath.EvalSymlinks(dir)
	if err != nil {
		path = dir
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	for _, line := range strings.Split(string(b), "\n") {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 2 {
			continue
		}
		mp := unescapeMount(f[4])
		// The last matching line wins: a later mount hides an earlier
		// one at the same place.
		if within(path, mp) && len(mp) >= len(mount) {
			device, mount, fstype = unescapeMount(g[1]), mp, g[0]
		}
	}
	return device, mount, fstype
}

// within reports whether path is mount or below it.
func within(path, mount string) bool {
	return mount == "/" || path == mount || strings.HasPrefix(path, mount+"/")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
