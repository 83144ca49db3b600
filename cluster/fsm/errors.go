package fsm

import (
	"strings"

	"github.com/sdn-dev/sdn/model"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Code classifies why a command was refused; the API maps it to a gRPC code.
type Code int

// Refusal codes.
const (
	CodeInvalid   Code = iota + 1 // the request itself is wrong
	CodeConflict                  // the request contradicts the stored state
	CodeNotFound                  // it names something that does not exist
	CodeExhausted                 // a pool is full
)

// Error is a refused command: nothing was changed. Violations say why, object
// by object, so clients can point at the user's source text.
type Error struct {
	Code       Code
	Violations []*sdnv1.Violation
}

func (e *Error) Error() string {
	msgs := make([]string, 0, len(e.Violations))
	for _, v := range e.Violations {
		m := v.Message
		if v.Kind != "" && v.Name != "" {
			m = v.Kind + " " + v.Name + ": " + m
		}
		msgs = append(msgs, m)
	}
	return strings.Join(msgs, "; ")
}

// violations collects refusals while a command is checked.
type violations struct {
	code Code
	list []*sdnv1.Violation
}

func (vs *violations) add(code Code, kind model.Kind, name, field, msg string) {
	if vs.code == 0 || code > vs.code {
		// Exhausted and not-found outrank conflicts, which outrank
		// invalid input: the most specific code wins.
		vs.code = code
	}
	vs.list = append(vs.list, &sdnv1.Violation{Kind: string(kind), Name: name, Field: field, Message: msg})
}

func (vs *violations) err() *Error {
	if len(vs.list) == 0 {
		return nil
	}
	return &Error{Code: vs.code, Violations: vs.list}
}

func refuse(code Code, kind model.Kind, name, field, msg string) *Error {
	vs := &violations{}
	vs.add(code, kind, name, field, msg)
	return vs.err()
}

// Refuse returns a refusal with one violation: how the raft server refuses
// what it checks itself (membership changes, restores).
func Refuse(code Code, kind model.Kind, name, field, msg string) *Error {
	return refuse(code, kind, name, field, msg)
}
