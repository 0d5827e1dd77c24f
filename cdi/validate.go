package cdi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"
	cdispec "tags.cncf.io/container-device-interface/specs-go"
)

// ErrStale marks a spec whose device numbers no longer match the live node,
// as after the module was reloaded with another major.
var ErrStale = errors.New("stale CDI spec")

// Validate checks a spec file with the CDI library and against the live
// device nodes; a mismatch wraps ErrStale.
func Validate(path string) (*cdiapi.Spec, error) {
	spec, err := cdiapi.ReadSpec(path, 0)
	if err != nil {
		return nil, fmt.Errorf("invalid CDI spec %s: %w", path, err)
	}
	nodes := append([]*cdispec.DeviceNode(nil), spec.ContainerEdits.DeviceNodes...)
	for _, d := range spec.Devices {
		nodes = append(nodes, d.ContainerEdits.DeviceNodes...)
	}
	for _, n := range nodes {
		if err := checkLive(n); err != nil {
			return spec, fmt.Errorf("%w %s: %w; regenerate it with `greenboost-ctk cdi generate`", ErrStale, path, err)
		}
	}
	return spec, nil
}

func checkLive(n *cdispec.DeviceNode) error {
	host := n.HostPath
	if host == "" {
		host = n.Path
	}
	fi, err := os.Stat(host)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("device %s does not exist", host)
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return fmt.Errorf("%s is not a character device", host)
	}
	major, minor := deviceNumbers(fi)
	if n.Major == 0 && n.Minor == 0 {
		return nil // numbers left for the engine to fill in
	}
	if n.Major != major || n.Minor != minor {
		return fmt.Errorf("it names %s as %d:%d but the device is %d:%d", host, n.Major, n.Minor, major, minor)
	}
	return nil
}
