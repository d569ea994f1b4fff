package activator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/dealflow/dealflow/services/notifier"
)

// Files activates deals by writing each Activation to a folder that a
// DSP's bulk upload (or a person) picks up: <idempotency key>.json, the
// body exactly as the webhook would POST it, and beside it
// <idempotency key>.sig, {"timestamp": "<unix seconds>", "signature":
// "sha256=<hex>"}, which notifier.Verify checks against the .json's bytes
// with the shared secret. The .sig is written first and each file appears
// whole (written aside, then renamed), so a reader that sees a .json can
// verify it. A deal whose .json exists already is not written again: the
// file is the activation, once.
type Files struct {
	Dir    string
	Secret string
	Now    func() time.Time
}

// Name implements DSP.
func (f *Files) Name() string { return "file" }

// SignatureFile is the content of a .sig file.
type SignatureFile struct {
	Timestamp string `json:"timestamp"`
	Signature string `json:"signature"`
}

var fileKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)

// Activate implements DSP.
func (f *Files) Activate(_ context.Context, a Activation) (Receipt, error) {
	if !fileKeyRE.MatchString(a.IdempotencyKey) {
		return Receipt{}, &Error{Code: CodeRefused, Reason: fmt.Sprintf("idempotency key %q cannot name a file", a.IdempotencyKey)}
	}
	name := a.IdempotencyKey + ".json"
	path := filepath.Join(f.Dir, name)
	if _, err := os.Stat(path); err == nil {
		return Receipt{Ref: name, Replayed: true}, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Receipt{}, ioError(err)
	}
	body, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return Receipt{}, &Error{Code: CodeRefused, Reason: "encode the activation: " + err.Error(), Err: err}
	}
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	sig, err := json.Marshal(SignatureFile{Timestamp: ts, Signature: notifier.Sign(f.Secret, ts, body)})
	if err != nil {
		return Receipt{}, &Error{Code: CodeRefused, Reason: err.Error(), Err: err}
	}
	if err := writeWhole(f.Dir, a.IdempotencyKey+".sig", sig); err != nil {
		return Receipt{}, ioError(err)
	}
	if err := writeWhole(f.Dir, name, body); err != nil {
		return Receipt{}, ioError(err)
	}
	return Receipt{Ref: name}, nil
}

// writeWhole writes b to dir/name through a temporary file in dir, synced
// and renamed over name, so name never holds part of b.
func writeWhole(dir, name string, b []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename it is gone already
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}

func ioError(err error) error {
	return &Error{Code: CodeIO, Reason: err.Error(), Retryable: true, Err: err}
}
