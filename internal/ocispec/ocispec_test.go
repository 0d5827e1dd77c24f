package ocispec

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadAnnotationsAndEnv(t *testing.T) {
	tests := []struct {
		name, spec  string
		annotations map[string]string
		env         []string
		err         string
	}{
		{
			name:        "both",
			spec:        `{"ociVersion":"1.0.2","process":{"args":["sh"],"env":["A=1","GREENBOOST_RAM_LIMIT=1G"],"cwd":"/"},"annotations":{"greenboost.io/nvme-limit":"2G"},"linux":{"namespaces":[{"type":"pid"}]}}`,
			annotations: map[string]string{"greenboost.io/nvme-limit": "2G"},
			env:         []string{"A=1", "GREENBOOST_RAM_LIMIT=1G"},
		},
		{name: "no process", spec: `{"ociVersion":"1.0.2","annotations":{"a":"b"}}`, annotations: map[string]string{"a": "b"}},
		{name: "malformed", spec: `{"process":{"env":"not a list"}}`, err: "parsing OCI spec"},
		{name: "missing", err: "reading OCI spec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bundle := t.TempDir()
			if tt.spec != "" {
				if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(tt.spec), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			annotations, env, err := ReadAnnotationsAndEnv(Path(bundle))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(annotations) != len(tt.annotations) {
				t.Errorf("annotations %v, want %v", annotations, tt.annotations)
			}
			for k, v := range tt.annotations {
				if annotations[k] != v {
					t.Errorf("annotation %s = %q, want %q", k, annotations[k], v)
				}
			}
			if !slices.Equal(env, tt.env) {
				t.Errorf("env %v, want %v", env, tt.env)
			}
		})
	}
}
