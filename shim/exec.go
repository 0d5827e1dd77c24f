package shim

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/greenboost/greenboost-container-toolkit/cdi"
	"github.com/greenboost/greenboost-container-toolkit/internal/ocispec"
)

// execProcessWithEnv gives a process started with `exec --process FILE` the
// GreenBoost environment of its container: engines build that file from
// their own copy of the container's config, which our create-time edits
// never reached. It returns the path of the edited copy, an in-memory file
// that the runtime inherits (the engine's file may be a pipe, in a
// read-only place, or read again by the engine), or "" to run the engine's
// file as it is: a container without GreenBoost, or anything the runtime
// should report itself (an unknown container, an unreadable file; a file
// that does not parse reaches it as read).
func execProcessWithEnv(runtime, root, process, id string) (string, error) {
	// Only --root: the engine's --log must not get our query's errors.
	stateArgs := []string{"state", id}
	if root != "" {
		stateArgs = append([]string{"--root", root}, stateArgs...)
	}
	out, err := exec.Command(runtime, stateArgs...).Output()
	if err != nil {
		return "", nil
	}
	var st specs.State
	if err := json.Unmarshal(out, &st); err != nil || st.Bundle == "" {
		return "", nil
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
	if err := ocispec.Decode(ocispec.Path(st.Bundle), &spec); err != nil || spec.Process == nil || !hasGreenBoost(spec.Hooks) {
		return "", nil
	}
	containerEnv := spec.Process.Env
	if envValue(containerEnv, cdi.ActiveEnv) != "1" {
		return "", nil
	}
	data, err := os.ReadFile(process)
	if err != nil {
		return "", nil
	}
	// Only env changes: every other member goes to the runtime as the
	// engine wrote it (a member left out means the runtime's default).
	var p map[string]json.RawMessage
	var env []string
	if json.Unmarshal(data, &p) != nil || json.Unmarshal(p["env"], &env) != nil || env == nil {
		// The runtime reports a file that does not parse, and gives one
		// without env the container's (crun), ours included, or none (runc).
		// The bytes go to it as read, since a pipe cannot be read twice.
		return copyToMemfd(process, data)
	}
	ours, _, _ := strings.Cut(envValue(containerEnv, cdi.PreloadEnv), ":")
	preload := mergePreload(ours, envValue(env, cdi.PreloadEnv))
	ourEnv := []string{cdi.PreloadEnv + "=" + preload, cdi.ActiveEnv + "=1"}
	if p["env"], err = json.Marshal(append(withoutVars(env, ourEnv), ourEnv...)); err != nil {
		return "", fmt.Errorf("encoding the exec process: %w", err)
	}
	edited, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encoding the exec process: %w", err)
	}
	return copyToMemfd(process, edited)
}

// copyToMemfd puts data in an in-memory file and returns its path for the
// runtime. Not close-on-exec: the runtime opens it by its /proc/self/fd
// path, and closes it before the container's process starts.
func copyToMemfd(process string, data []byte) (string, error) {
	fd, err := unix.MemfdCreate("greenboost-exec-process", 0)
	if err != nil {
		return "", fmt.Errorf("copying the exec process %s: %w", process, err)
	}
	if _, err := unix.Write(fd, data); err != nil {
		unix.Close(fd)
		return "", fmt.Errorf("copying the exec process %s: %w", process, err)
	}
	return fmt.Sprintf("/proc/self/fd/%d", fd), nil
}
