// Package cdi produces the container edits that give a container GreenBoost:
// the single source used by both the runtime wrapper and the CDI spec.
package cdi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	cdispec "tags.cncf.io/container-device-interface/specs-go"

	"github.com/greenboost/greenboost-container-toolkit/internal/config"
)

const (
	// Kind is the CDI kind of our devices: greenboost.io/vram.
	Kind = config.CDIKind

	// ActiveEnv tells the preload library (and people) that GreenBoost is on.
	ActiveEnv = "GREENBOOST_ACTIVE"
	// PreloadEnv is the dynamic loader's preload list.
	PreloadEnv = "LD_PRELOAD"

	// HookArg0 is argv[0] of every hook entry we write, whatever the hook's
	// path: it marks a spec that already has GreenBoost.
	HookArg0 = "greenboost-hook"

	// Hook stages as the hook binary names them.
	StagePrestart = "prestart"
	StagePoststop = "poststop"
)

// hookEnv is the whole environment of a hook process: runc passes a hook
// exactly this list, so nothing of the engine's or the container's leaks in.
var hookEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

// Edits returns the container edits for CDI device name device ("ext" for the
// config defaults, or a profile name): the device node with its live numbers,
// the read-only library mount, the environment and both hooks.
func Edits(cfg *config.Config, device string) (*cdispec.ContainerEdits, error) {
	if _, _, err := cfg.ProfileLimits(device); err != nil {
		return nil, err
	}
	node, err := deviceNode(cfg.Device.HostPath)
	if err != nil {
		return nil, err
	}
	lib, err := FindLibrary(cfg)
	if err != nil {
		return nil, err
	}
	return &cdispec.ContainerEdits{
		Env: []string{
			PreloadEnv + "=" + cfg.Library.ContainerPath,
			ActiveEnv + "=1",
		},
		DeviceNodes: []*cdispec.DeviceNode{node},
		Mounts: []*cdispec.Mount{{
			HostPath:      lib,
			ContainerPath: cfg.Library.ContainerPath,
			Options:       []string{"ro", "nosuid", "nodev", "bind"},
			Type:          "bind",
		}},
		Hooks: HookEdits(cfg, device).Hooks,
	}, nil
}

// HookEdits are the edits of a container that gets no device (no module,
// and [limits] enforce = false): only the hooks, which record the limits it
// asked for as not enforced.
func HookEdits(cfg *config.Config, device string) *cdispec.ContainerEdits {
	return &cdispec.ContainerEdits{Hooks: []*cdispec.Hook{
		hook(cfg, device, StagePrestart),
		hook(cfg, device, StagePoststop),
	}}
}

func deviceNode(hostPath string) (*cdispec.DeviceNode, error) {
	fi, err := os.Stat(hostPath)
	if err != nil {
		return nil, fmt.Errorf("GreenBoost device %s: %w (is the greenboost module loaded? see `greenboost-ctk status`)", hostPath, err)
	}
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return nil, fmt.Errorf("GreenBoost device %s is not a character device", hostPath)
	}
	major, minor := deviceNumbers(fi)
	return nodeEdit(hostPath, major, minor), nil
}

// nodeEdit is the edit of the device node major:minor found at hostPath.
func nodeEdit(hostPath string, major, minor int64) *cdispec.DeviceNode {
	mode := os.FileMode(0o666)
	node := &cdispec.DeviceNode{
		Path:        config.ContainerDevicePath,
		Type:        "c",
		Major:       major,
		Minor:       minor,
		FileMode:    &mode,
		Permissions: "rw",
	}
	// hostPath only where it differs from the container's path (engines take
	// path then): it needs cdiVersion 0.5.0, which older engines may refuse.
	if filepath.Clean(hostPath) != config.ContainerDevicePath {
		node.HostPath = hostPath
	}
	return node
}

// FindLibrary returns the first configured host path of the preload library
// that exists as a regular file.
func FindLibrary(cfg *config.Config) (string, error) {
	for _, p := range cfg.Library.HostPaths {
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("GreenBoost library %s: %w", p, err)
		}
	}
	return "", fmt.Errorf("GreenBoost library libgreenboost_cuda.so not found in %s: install it there or set [library] host-paths in %s",
		strings.Join(cfg.Library.HostPaths, ", "), cfg.Path)
}

func hook(cfg *config.Config, device, stage string) *cdispec.Hook {
	args := []string{HookArg0, "--config", cfg.Path}
	if device != "" && device != config.DefaultDevice {
		args = append(args, "--profile", device)
	}
	args = append(args, stage)
	return &cdispec.Hook{
		HookName: stage, // our stage names are the OCI hook names
		Path:     cfg.Hook.Path,
		Args:     args,
		Env:      append([]string(nil), hookEnv...),
	}
}
