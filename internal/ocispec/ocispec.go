// Package ocispec reads a bundle's config.json, for the wrapper (which edits
// it) and the hook (which reads the container's requests from it).
package ocispec

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// Path is the spec file of a bundle.
func Path(bundle string) string {
	return filepath.Join(bundle, "config.json")
}

// Read loads and parses BUNDLE/config.json.
func Read(bundle string) (*specs.Spec, error) {
	path := Path(bundle)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading OCI spec: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parsing OCI spec %s: %w", path, err)
	}
	return &s, nil
}
