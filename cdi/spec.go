package cdi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"
	cdispec "tags.cncf.io/container-device-interface/specs-go"

	"github.com/greenboost/greenboost-container-toolkit/internal/atomicfile"
	"github.com/greenboost/greenboost-container-toolkit/internal/config"
)

// DefaultSpecPath is where `greenboost-ctk cdi generate` writes by default;
// /etc/cdi/greenboost.io-vram.yaml works too (/var/run/cdi has priority).
const DefaultSpecPath = "/var/run/cdi/greenboost.io-vram.yaml"

// Spec builds the CDI spec: device "ext" with the config's default limits
// and one device per [limits.profiles.NAME], each from Edits. Its cdiVersion
// is the lowest that expresses it, since older engines (Podman 4.3) refuse
// newer versions.
func Spec(cfg *config.Config) (*cdispec.Spec, error) {
	spec := &cdispec.Spec{Kind: Kind}
	for _, name := range append([]string{config.DefaultDevice}, cfg.ProfileNames()...) {
		edits, err := Edits(cfg, name)
		if err != nil {
			return nil, err
		}
		spec.Devices = append(spec.Devices, cdispec.Device{Name: name, ContainerEdits: *edits})
	}
	version, err := cdispec.MinimumRequiredVersion(spec)
	if err != nil {
		return nil, fmt.Errorf("computing the CDI version: %w", err)
	}
	spec.Version = version
	return spec, nil
}

// Encode renders spec as "yaml" or "json", validated by the CDI library first
// so that nothing an engine would reject is written.
func Encode(spec *cdispec.Spec, format string) ([]byte, error) {
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the CDI spec: %w", err)
	}
	switch format {
	case "json":
		data = append(data, '\n')
	case "yaml":
		if data, err = yaml.JSONToYAML(data); err != nil {
			return nil, fmt.Errorf("encoding the CDI spec: %w", err)
		}
	default:
		return nil, fmt.Errorf("unknown format %q: expected yaml or json", format)
	}
	if err := validateBytes(data, format); err != nil {
		return nil, err
	}
	return data, nil
}

// validateBytes runs the CDI library's own checks on exactly these bytes;
// the library reads specs only from files, so they go to a temp file first.
func validateBytes(data []byte, format string) error {
	dir, err := os.MkdirTemp("", "greenboost-cdi")
	if err != nil {
		return tempFileError(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "spec."+format)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return tempFileError(err)
	}
	if _, err := cdiapi.ReadSpec(path, 0); err != nil {
		return fmt.Errorf("the generated CDI spec is invalid: %w", err)
	}
	return nil
}

func tempFileError(err error) error {
	return fmt.Errorf("checking the generated CDI spec with the CDI library, which reads only files, needs a temp file: %w; set TMPDIR to a writable directory", err)
}

// WriteSpec writes data to path atomically with mode 0644, creating the
// directory with mode 0755 whatever the umask: engines that do not run as
// root must read the spec too.
func WriteSpec(path string, data []byte) error {
	if err := mkdirAll0755(filepath.Dir(path)); err != nil {
		return fmt.Errorf("creating the CDI spec dir: %w", err)
	}
	return atomicfile.Write(path, data, 0o644)
}

// mkdirAll0755 is os.MkdirAll whose new directories get mode 0755, not
// 0755 less the umask.
func mkdirAll0755(dir string) error {
	_, err := os.Stat(dir)
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := mkdirAll0755(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return os.Chmod(dir, 0o755)
}
