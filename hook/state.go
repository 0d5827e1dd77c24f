package hook

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// ReadState decodes the OCI state a runtime writes to a hook's stdin. Only
// id, pid, bundle and annotations are used: crun's status values differ.
func ReadState(r io.Reader) (*specs.State, error) {
	var s specs.State
	if err := json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(&s); err != nil {
		return nil, fmt.Errorf("reading the OCI state from stdin: %w", err)
	}
	// Checked here, as the record writer does, so that a bad id fails
	// before anything is set or warned about.
	if err := validID(s.ID); err != nil {
		return nil, fmt.Errorf("reading the OCI state from stdin: %w", err)
	}
	return &s, nil
}
