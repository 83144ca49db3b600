package cnisrv

// TryLockContainer takes the per-container lock that ADD, DEL and CHECK
// hold, if no operation on the container holds it now; call unlock to
// release it. The leak loop (node/leaks) holds it while it releases a
// container's attachment, so that it never races an ADD in progress.
func (s *Server) TryLockContainer(containerID string) (unlock func(), ok bool) {
	return s.locks.tryLock(containerID)
}

// tryLock is lock without waiting.
func (k *keyedMutex) tryLock(key string) (func(), bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.m[key] = l
	}
	select {
	case l.ch <- struct{}{}:
	default:
		return nil, false
	}
	l.users++
	return func() {
		<-l.ch
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}, true
}
