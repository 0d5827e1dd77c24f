// Package request reads what a container asks of GreenBoost from its OCI
// annotations and environment: opt-out and budgets. Annotations win over env.
package request

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/greenboost/greenboost-container-toolkit/internal/config"
)

// The names a container uses to ask.
const (
	AnnotationRAM     = "greenboost.io/ram-limit"
	AnnotationNVMe    = "greenboost.io/nvme-limit"
	AnnotationDisable = "greenboost.io/disable"
	EnvRAM            = "GREENBOOST_RAM_LIMIT"
	EnvNVMe           = "GREENBOOST_NVME_LIMIT"
	EnvDisable        = "GREENBOOST_DISABLE"
)

// Value is one requested setting and where it came from.
type Value struct {
	Key string // the annotation or variable name; "" when not asked
	Raw string
}

// Request is what one container asks for.
type Request struct {
	Disable bool
	RAM     Value
	NVMe    Value
}

// Parse reads the request from a spec's annotations and process env. An
// opt-out that is not a boolean is an error: ignoring it would start the
// container with GreenBoost it asked to be without, or the other way round.
func Parse(annotations map[string]string, env []string) (Request, error) {
	vars := envMap(env)
	disable, err := disabled(annotations, vars)
	if err != nil {
		return Request{}, err
	}
	return Request{
		Disable: disable,
		RAM:     pick(annotations, vars, AnnotationRAM, EnvRAM),
		NVMe:    pick(annotations, vars, AnnotationNVMe, EnvNVMe),
	}, nil
}

func pick(annotations, vars map[string]string, annotation, env string) Value {
	if v, ok := annotations[annotation]; ok {
		return Value{Key: annotation, Raw: v}
	}
	if v, ok := vars[env]; ok {
		return Value{Key: env, Raw: v}
	}
	return Value{}
}

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v // the last one wins, as in execve's consumers
		}
	}
	return m
}

// disabled reads the opt-out: the first of the annotation and the variable
// that is set and not empty decides.
func disabled(annotations, vars map[string]string) (bool, error) {
	v := pick(annotations, vars, AnnotationDisable, EnvDisable)
	if strings.TrimSpace(v.Raw) == "" {
		if v.Key == AnnotationDisable { // an empty annotation says nothing
			v = Value{Key: EnvDisable, Raw: vars[EnvDisable]}
		}
		if strings.TrimSpace(v.Raw) == "" {
			return false, nil
		}
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v.Raw))
	if err != nil {
		return false, fmt.Errorf("invalid %s %q: expected true or false (or 1 or 0)", v.Key, v.Raw)
	}
	return b, nil
}

// Limits resolves the budgets in bytes (0 = unlimited): the request where it
// asks, else the given defaults (a CDI profile's or the config's), whose keys
// name them in errors.
func (r Request) Limits(defaultRAM, defaultNVMe Value) (ram, nvme uint64, err error) {
	if ram, err = resolve(r.RAM, defaultRAM); err != nil {
		return 0, 0, err
	}
	if nvme, err = resolve(r.NVMe, defaultNVMe); err != nil {
		return 0, 0, err
	}
	return ram, nvme, nil
}

// decides is the value that sets a budget: the request, else the default.
func decides(asked, fallback Value) Value {
	if asked.Key == "" {
		return fallback
	}
	return asked
}

func resolve(asked, fallback Value) (uint64, error) {
	v := decides(asked, fallback)
	n, err := config.ParseSize(v.Raw)
	var sizeErr *config.SizeError
	if errors.As(err, &sizeErr) {
		sizeErr.Key = v.Key // the annotation, variable or config key it came from
		return 0, sizeErr
	}
	return n, err
}

// Resolve returns the budgets in bytes (0 = unlimited) for a container using
// CDI device profile ("" or "ext": the config's [limits]):
// annotations > env > profile > config, each within the config's caps.
func (r Request) Resolve(cfg *config.Config, profile string) (ram, nvme uint64, err error) {
	defRAM, defNVMe, err := cfg.ProfileLimits(profile)
	if err != nil {
		return 0, 0, err
	}
	key := "limits"
	if profile != "" && profile != config.DefaultDevice {
		key = "limits.profiles." + profile
	}
	ramDefault, nvmeDefault := Value{Key: key + ".ram", Raw: defRAM}, Value{Key: key + ".nvme", Raw: defNVMe}
	if ram, nvme, err = r.Limits(ramDefault, nvmeDefault); err != nil {
		return 0, 0, err
	}
	for _, budget := range []struct {
		tier config.Tier
		v    Value
	}{{config.TierRAM, decides(r.RAM, ramDefault)}, {config.TierNVMe, decides(r.NVMe, nvmeDefault)}} {
		if err := cfg.CheckCap(budget.tier, budget.v.Key, budget.v.Raw); err != nil {
			return 0, 0, err
		}
	}
	return ram, nvme, nil
}
