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
	var s specs.Spec
	if err := decode(bundle, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// ReadAnnotationsAndEnv reads only the annotations and the process
// environment of BUNDLE/config.json, where a container asks for its budgets.
// A short-lived hook decodes this in a fifth of the time of the whole spec,
// whose many types the JSON decoder must first learn (~1 ms).
func ReadAnnotationsAndEnv(bundle string) (map[string]string, []string, error) {
	var s struct {
		Annotations map[string]string `json:"annotations"`
		Process     *struct {
			Env []string `json:"env"`
		} `json:"process"`
	}
	if err := decode(bundle, &s); err != nil {
		return nil, nil, err
	}
	if s.Process == nil {
		return s.Annotations, nil, nil
	}
	return s.Annotations, s.Process.Env, nil
}

func decode(bundle string, v any) error {
	path := Path(bundle)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading OCI spec: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("parsing OCI spec %s: %w", path, err)
	}
	return nil
}
