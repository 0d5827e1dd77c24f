package hook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// maxStateSize bounds the OCI state read from stdin: its annotations are
// the only part of any size.
const maxStateSize = 1 << 20

// ReadState decodes the OCI state a runtime writes to a hook's stdin. Only
// id, pid, bundle and annotations are used: crun's status values differ.
func ReadState(r io.Reader) (*specs.State, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxStateSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the OCI state from stdin: %w", err)
	}
	if len(data) > maxStateSize {
		return nil, fmt.Errorf("reading the OCI state from stdin: over %d MiB (Kubernetes bounds a pod's annotations at 256 KiB)", maxStateSize>>20)
	}
	var s specs.State
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&s); err != nil {
		return nil, fmt.Errorf("reading the OCI state from stdin: %w", err)
	}
	// Checked here, as the record writer does, so that a bad id fails
	// before anything is set or warned about.
	if err := validID(s.ID); err != nil {
		return nil, fmt.Errorf("reading the OCI state from stdin: %w", err)
	}
	return &s, nil
}
