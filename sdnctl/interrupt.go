package main

// interruptedError is a command cut short by an interruption; its message
// says whether a write it had sent has an unknown outcome.
type interruptedError struct{ msg string }

func (e *interruptedError) Error() string { return e.msg }
