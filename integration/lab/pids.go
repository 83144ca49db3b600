package lab

// SDNDPID returns the pid of host i's sdnd (server and agent on host1,
// agent elsewhere), or 0 when it does not run: for benchmarks reading
// /proc/PID (e.g. peak RSS).
func (l *Lab) SDNDPID(i int) int { return l.sdnd(i).pid() }
