// Package request reads what a container asks of GreenBoost from its OCI
// annotations and environment: opt-out and budgets. Annotations win over env.
package request

import (
	"errors"
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

// Parse reads the request from a spec's annotations and process env.
func Parse(annotations map[string]string, env []string) Request {
	vars := envMap(env)
	return Request{
		Disable: disabled(annotations, vars),
		RAM:     pick(annotations, vars, AnnotationRAM, EnvRAM),
		NVMe:    pick(annotations, vars, AnnotationNVMe, EnvNVMe),
	}
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

// disabled reads the opt-out: the annotation decides where it holds a
// boolean, else the variable; a value that is neither true nor false does
// not hide the other.
func disabled(annotations, vars map[string]string) bool {
	for _, v := range []string{annotations[AnnotationDisable], vars[EnvDisable]} {
		if b, err := strconv.ParseBool(strings.TrimSpace(v)); err == nil {
			return b
		}
	}
	return false
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

func resolve(asked, fallback Value) (uint64, error) {
	v := asked
	if v.Key == "" {
		v = fallback
	}
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
// annotations > env > profile > config.
func (r Request) Resolve(cfg *config.Config, profile string) (ram, nvme uint64, err error) {
	defRAM, defNVMe, err := cfg.ProfileLimits(profile)
	if err != nil {
		return 0, 0, err
	}
	key := "limits"
	if profile != "" && profile != config.DefaultDevice {
		key = "limits.profiles." + profile
	}
	return r.Limits(Value{Key: key + ".ram", Raw: defRAM}, Value{Key: key + ".nvme", Raw: defNVMe})
}
