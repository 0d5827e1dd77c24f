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
	"--cgroup": true,
}

// execTarget returns the --process file and the container id of an exec
// command line (rest is what follows the verb); "" when absent.
func execTarget(rest []string) (process, id string) {
	for i := 0; i < len(rest); i++ {
		name, value, hasValue := strings.Cut(rest[i], "=")
		name = normalizeFlag(name)
		if !strings.HasPrefix(name, "-") {
			return process, rest[i]
		}
		if execFlagsWithValue[name] && !hasValue && i+1 < len(rest) {
			i++
			value = rest[i]
		}
		if name == "--process" || name == "-p" {
			process = value
		}
	}
	return process, ""
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
	// Our prestart hook marks a container with GreenBoost: its env is the
	// image's to set, GREENBOOST_ACTIVE included.
	var spec struct {
		Process *struct {
			Env []string `json:"env"`
		} `json:"process"`
		Hooks *specs.Hooks `json:"hooks"`
	}
	if err := ocispec.Decode(state.Bundle, &spec); err != nil || spec.Process == nil || !hasGreenBoost(&specs.Spec{Hooks: spec.Hooks}) {
		return nil
	}
	containerEnv := spec.Process.Env
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
