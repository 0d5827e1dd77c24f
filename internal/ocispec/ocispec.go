// Package ocispec locates a bundle's config.json and reads what a container
// asks for from it, for the hook and the wrapper's exec path.
package ocispec

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Path is the spec file of a bundle.
func Path(bundle string) string {
	return filepath.Join(bundle, "config.json")
}

// ReadAnnotationsAndEnv reads only the annotations and the process
// environment of the spec file at path, where a container asks for its
// budgets.
// A short-lived hook decodes this in a fifth of the time of the whole spec,
// whose many types the JSON decoder must first learn (~1 ms).
func ReadAnnotationsAndEnv(path string) (map[string]string, []string, error) {
	var s struct {
		Annotations map[string]string `json:"annotations"`
		Process     *struct {
			Env []string `json:"env"`
		} `json:"process"`
	}
	if err := Decode(path, &s); err != nil {
		return nil, nil, err
	}
	if s.Process == nil {
		return s.Annotations, nil, nil
	}
	return s.Annotations, s.Process.Env, nil
}

// Decode decodes the spec file at path into v, which may name only the
// members the caller needs.
func Decode(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading OCI spec: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("parsing OCI spec %s: %w", path, err)
	}
	return nil
}
