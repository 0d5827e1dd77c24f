package shim

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/greenboost/greenboost-container-toolkit/internal/atomicfile"
)

// Modifier is one single-purpose change to a spec.
type Modifier interface {
	Modify(*specs.Spec) error
}

// Spec is a bundle's config.json: loaded once, modified, flushed once.
type Spec struct {
	path    string
	mode    os.FileMode
	spec    *specs.Spec
	unknown []byte // the file as read, when it has members specs.Spec lacks
}

// LoadSpec reads the spec file at path (a bundle's config.json).
func LoadSpec(path string) (*Spec, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading OCI spec: %w (give the bundle directory with --bundle, or run in it)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("reading OCI spec: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading OCI spec: %w", err)
	}
	// Sized from the stat: io.ReadAll would grow its buffer from 512 bytes,
	// copying an engine's 20 KiB spec several times on every create.
	data := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("reading OCI spec %s: %w", path, err)
	}
	s := &Spec{path: path, mode: fi.Mode().Perm(), spec: &specs.Spec{}}
	if s.unknown, err = decodeKeepingUnknown(data, s.spec); err != nil {
		return nil, fmt.Errorf("parsing OCI spec %s: %w (it must be an OCI runtime spec, as `runc spec` writes)", path, err)
	}
	return s, nil
}

// Raw returns the loaded spec.
func (s *Spec) Raw() *specs.Spec { return s.spec }

// Modify applies m to the loaded spec; nothing is written until Flush.
func (s *Spec) Modify(m Modifier) error {
	return m.Modify(s.spec)
}

// Flush writes the spec back atomically, keeping the file's mode.
func (s *Spec) Flush() error {
	data, err := encodeKeepingUnknown(s.spec, s.unknown)
	if err != nil {
		return fmt.Errorf("encoding OCI spec: %w", err)
	}
	if err := atomicfile.Write(s.path, data, s.mode); err != nil {
		if errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("%w: greenboost-runtime adds GreenBoost by editing the spec, so its directory must be writable; "+
				"or opt the container out (GREENBOOST_DISABLE=1, or annotation greenboost.io/disable=true)", err)
		}
		return err
	}
	return nil
}
