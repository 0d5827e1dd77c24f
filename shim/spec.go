package shim

import (
	"encoding/json"
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
	path string
	dir  *os.Root // the file's directory, opened once for the read and the write
	name string   // the file's name in dir
	mode os.FileMode
	spec *specs.Spec // the members the modifiers use (specMembers)
	// original is the file as read: Flush keeps from it what spec leaves
	// out, an engine's members that runtime-spec lacks included.
	original []byte
}

// specMembers are the members of a spec that the modifiers and the CDI
// library read or write, in runtime-spec types; the rest of the file stays
// as read. encoding/json learns a type's whole type graph on first use, and
// for all of specs.Spec that took ~1 ms per create, more than the edits.
// A modifier that needs another member adds it here: otherwise its change is
// not written (TestEditsNeedOnlyTheDecodedMembers).
type specMembers struct {
	Process     *processMembers   `json:"process,omitempty"`
	Root        *specs.Root       `json:"root,omitempty"`
	Mounts      []specs.Mount     `json:"mounts,omitempty"`
	Hooks       *specs.Hooks      `json:"hooks,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Linux       *linuxMembers     `json:"linux,omitempty"`
}

type processMembers struct {
	User specs.User `json:"user"` // its ids go to the device node (CDI)
	Env  []string   `json:"env,omitempty"`
}

type linuxMembers struct {
	Namespaces []specs.LinuxNamespace `json:"namespaces,omitempty"`
	Devices    []specs.LinuxDevice    `json:"devices,omitempty"`
	Resources  *resourcesMembers      `json:"resources,omitempty"`
}

type resourcesMembers struct {
	Devices []specs.LinuxDeviceCgroup `json:"devices,omitempty"`
}

func (m *specMembers) spec() *specs.Spec {
	s := &specs.Spec{Root: m.Root, Mounts: m.Mounts, Hooks: m.Hooks, Annotations: m.Annotations}
	if p := m.Process; p != nil {
		s.Process = &specs.Process{User: p.User, Env: p.Env}
	}
	if l := m.Linux; l != nil {
		s.Linux = &specs.Linux{Namespaces: l.Namespaces, Devices: l.Devices}
		if l.Resources != nil {
			s.Linux.Resources = &specs.LinuxResources{Devices: l.Resources.Devices}
		}
	}
	return s
}

func membersOf(s *specs.Spec) *specMembers {
	m := &specMembers{Root: s.Root, Mounts: s.Mounts, Hooks: s.Hooks, Annotations: s.Annotations}
	if p := s.Process; p != nil {
		m.Process = &processMembers{User: p.User, Env: p.Env}
	}
	if l := s.Linux; l != nil {
		m.Linux = &linuxMembers{Namespaces: l.Namespaces, Devices: l.Devices}
		if l.Resources != nil {
			m.Linux.Resources = &resourcesMembers{Devices: l.Resources.Devices}
		}
	}
	return m
}

// LoadSpec reads the spec file at path (a bundle's config.json). Close
// releases its directory.
func LoadSpec(path string) (*Spec, error) {
	dir, name, err := atomicfile.OpenDir(path)
	if err != nil {
		return nil, specOpenError(path, err)
	}
	s, err := loadSpecIn(dir, name, path)
	if err != nil {
		dir.Close()
		return nil, err
	}
	return s, nil
}

func loadSpecIn(dir *os.Root, name, path string) (*Spec, error) {
	f, err := dir.Open(name)
	if err != nil {
		// A dangling link inside the bundle is ErrNotExist: not this case.
		if fi, lerr := dir.Lstat(name); !errors.Is(err, fs.ErrNotExist) && lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("reading OCI spec %s: %w (an absolute symlink, or one out of its directory: the wrapper reads and writes the spec only inside that directory, so make it a regular file or a relative link within it)", path, err)
		}
		return nil, specOpenError(path, err)
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
	var members specMembers
	if err := json.Unmarshal(data, &members); err != nil {
		return nil, fmt.Errorf("parsing OCI spec %s: %w (it must be an OCI runtime spec, as `runc spec` writes)", path, err)
	}
	return &Spec{path: path, dir: dir, name: name, mode: fi.Mode().Perm(), spec: members.spec(), original: data}, nil
}

func specOpenError(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading OCI spec %s: %w (give the bundle directory with --bundle, or run in it)", path, err)
	}
	return fmt.Errorf("reading OCI spec %s: %w", path, err)
}

// Close releases the spec file's directory.
func (s *Spec) Close() error { return s.dir.Close() }

// Raw returns the loaded spec. Only the members in specMembers are set, and
// only they are written back: the rest of the file stays as read.
func (s *Spec) Raw() *specs.Spec { return s.spec }

// Modify applies m to the loaded spec; nothing is written until Flush.
func (s *Spec) Modify(m Modifier) error {
	return m.Modify(s.spec)
}

// Flush writes the spec back atomically, keeping the file's mode, into the
// directory it was read from: renaming or swapping that directory's path
// meanwhile cannot send the write elsewhere.
func (s *Spec) Flush() error {
	data, err := encodeKeepingUnknown(membersOf(s.spec), s.original)
	if err != nil {
		return fmt.Errorf("encoding OCI spec: %w", err)
	}
	if err := atomicfile.WriteIn(s.dir, s.name, data, s.mode); err != nil {
		if errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("%w: greenboost-runtime adds GreenBoost by editing the spec, so its directory must be writable; "+
				"or opt the container out (GREENBOOST_DISABLE=1, or annotation greenboost.io/disable=true)", err)
		}
		return err
	}
	return nil
}
