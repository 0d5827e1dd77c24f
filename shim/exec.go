package shim

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/greenboost/greenboost-container-toolkit/cdi"
	"github.com/greenboost/greenboost-container-toolkit/internal/atomicfile"
	"github.com/greenboost/greenboost-container-toolkit/internal/ocispec"
)

// execFlagsWithValue are the flags of `runc exec` (and crun's) that take a value.
var execFlagsWithValue = map[string]bool{
	"--console-socket": true, "--cwd": true, "--env": true, "-e": true, "--user": true, "-u": true,
	"--additional-gids": true, "-g": true, "--process": true, "-p": true, "--apparmor": true,
	"--process-label": true, "--cap": true, "-c": true, "--pid-file": true, "--preserve-fds": true,
	"--cgroup": true, "--pidfd-socket": true,
}

// execTarget returns the --process file and the container id of an exec
// command line (rest is what follows the verb); "" when absent. What follows
// the id is the command to run, not flags.
func execTarget(rest []string) (process, id string) {
	id = verbArgs(rest, execFlagsWithValue, true, func(name, value string) {
		if name == "--process" || name == "-p" {
			process = value
		}
	})
	return process, id
}

// injectExecEnv gives a process started with `exec --process FILE` the
// GreenBoost environment of its container: engines build that file from
// their own copy of the container's config, which our create-time edits
// never reached. Containers without GreenBoost are left alone.
func injectExecEnv(runtime string, globalArgs []string, process, id string) error {
	out, err := exec.Command(runtime, append(slices.Clone(globalArgs), "state", id)...).Output()
	if err != nil {
		return nil // let the runtime report the unknown container itself
	}
	var state specs.State
	if err := json.Unmarshal(out, &state); err != nil || state.Bundle == "" {
		return nil
	}
	// Our prestart hook and GREENBOOST_ACTIVE mark a container with
	// GreenBoost: the env alone is the image's to set, and the hook alone is
	// a container without the device (no module, enforce = false).
	var spec struct {
		Process *struct {
			Env []string `json:"env"`
		} `json:"process"`
		Hooks *specs.Hooks `json:"hooks"`
	}
	if err := ocispec.Decode(state.Bundle, &spec); err != nil || spec.Process == nil || !hasGreenBoost(spec.Hooks) {
		return nil
	}
	containerEnv := spec.Process.Env
	if envValue(containerEnv, cdi.ActiveEnv) != "1" {
		return nil
	}
	data, err := os.ReadFile(process)
	if err != nil {
		return fmt.Errorf("reading the exec process %s: %w", process, err)
	}
	var p specs.Process
	unknown, err := decodeKeepingUnknown(data, &p)
	if err != nil {
		return fmt.Errorf("parsing the exec process %s: %w", process, err)
	}
	ours, _, _ := strings.Cut(envValue(containerEnv, cdi.PreloadEnv), ":")
	preload := mergePreload(ours, envValue(p.Env, cdi.PreloadEnv))
	ourEnv := []string{cdi.PreloadEnv + "=" + preload, cdi.ActiveEnv + "=1"}
	p.Env = append(withoutVars(p.Env, ourEnv), ourEnv...)
	edited, err := encodeKeepingUnknown(&p, unknown)
	if err != nil {
		return fmt.Errorf("encoding the exec process: %w", err)
	}
	fi, err := os.Stat(process)
	if err != nil {
		return fmt.Errorf("reading the exec process %s: %w", process, err)
	}
	return atomicfile.Write(process, edited, fi.Mode().Perm())
}
