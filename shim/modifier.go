package shim

import (
	"slices"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"
	cdispec "tags.cncf.io/container-device-interface/specs-go"

	"github.com/greenboost/greenboost-container-toolkit/cdi"
)

// greenboostEdits applies the CDI container edits to a spec. Unlike an
// engine applying a CDI spec, it keeps the image's own LD_PRELOAD after ours.
type greenboostEdits struct {
	edits *cdispec.ContainerEdits
}

var _ Modifier = greenboostEdits{}

func (m greenboostEdits) Modify(s *specs.Spec) error {
	if hasGreenBoost(s.Hooks) {
		return nil
	}
	edits := *m.edits
	edits.Env = make([]string, len(m.edits.Env))
	for i, kv := range m.edits.Env {
		if ours, ok := strings.CutPrefix(kv, cdi.PreloadEnv+"="); ok {
			kv = cdi.PreloadEnv + "=" + mergePreload(ours, processEnv(s, cdi.PreloadEnv))
		}
		edits.Env[i] = kv
	}
	// The CDI library appends an env entry whose key already exists (its
	// cache is keyed by whole entries), so drop the ones we replace first.
	if s.Process != nil {
		s.Process.Env = withoutVars(s.Process.Env, edits.Env)
	}
	before := slices.Clone(s.Mounts)
	if err := (&cdiapi.ContainerEdits{ContainerEdits: &edits}).Apply(s); err != nil {
		return err
	}
	s.Mounts = keepMountOrder(before, s.Mounts, edits.Mounts)
	return nil
}

// hookSpecArg gives our prestart hook the container's spec file where the
// runtime reads it from elsewhere than BUNDLE/config.json (crun's create
// --config FILE): the hook reads the container's requests there.
type hookSpecArg struct {
	path string
}

var _ Modifier = hookSpecArg{}

func (m hookSpecArg) Modify(s *specs.Spec) error {
	if s.Hooks == nil {
		return nil
	}
	for i, h := range s.Hooks.Prestart {
		if len(h.Args) > 1 && h.Args[0] == cdi.HookArg0 && !slices.Contains(h.Args, "--spec") {
			stage := len(h.Args) - 1
			s.Hooks.Prestart[i].Args = append(slices.Clone(h.Args[:stage]), "--spec", m.path, h.Args[stage])
		}
	}
	return nil
}

// keepMountOrder returns the spec's mounts in the order the engine gave them,
// followed by ours: the CDI library sorts all mounts by depth, but a runtime
// mounts in spec order, and a transparent wrapper leaves that order alone.
// A mount the edits replaced (same destination) is dropped, as Apply did.
func keepMountOrder(before, applied []specs.Mount, ours []*cdispec.Mount) []specs.Mount {
	isOurs := func(m specs.Mount) bool {
		return slices.ContainsFunc(ours, func(o *cdispec.Mount) bool { return o.ContainerPath == m.Destination })
	}
	kept := slices.DeleteFunc(before, isOurs)
	return append(kept, slices.DeleteFunc(applied, func(m specs.Mount) bool { return !isOurs(m) })...)
}

// hasGreenBoost reports whether the spec already has a GreenBoost prestart
// hook: from an earlier application, one with another config, or an engine's
// CDI injection, which may name a profile. The edits go as a whole, so the
// first set stays and a second application changes nothing.
func hasGreenBoost(hooks *specs.Hooks) bool {
	return hooks != nil && slices.ContainsFunc(hooks.Prestart, func(h specs.Hook) bool {
		return len(h.Args) > 0 && h.Args[0] == cdi.HookArg0
	})
}

func processEnv(s *specs.Spec, name string) string {
	if s.Process == nil {
		return ""
	}
	return envValue(s.Process.Env, name)
}

// withoutVars returns env without the variables that entries (KEY=VALUE)
// set, an entry without "=" counting as its key.
func withoutVars(env, entries []string) []string {
	return slices.DeleteFunc(env, func(kv string) bool {
		key, _, _ := strings.Cut(kv, "=")
		return slices.ContainsFunc(entries, func(e string) bool { return strings.HasPrefix(e, key+"=") })
	})
}

// envValue returns the value of variable name in env, "" when unset; the
// last entry wins, as for execve.
func envValue(env []string, name string) string {
	value := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			value = v
		}
	}
	return value
}

// mergePreload puts ours first and keeps the image's entries (ld.so accepts
// colons and spaces as separators), dropping a duplicate of ours.
func mergePreload(ours, image string) string {
	merged := []string{ours}
	for _, p := range strings.FieldsFunc(image, func(r rune) bool { return r == ':' || r == ' ' }) {
		if p != ours {
			merged = append(merged, p)
		}
	}
	return strings.Join(merged, ":")
}
