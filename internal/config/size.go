package config

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// SizeForm is the expected form of a size, quoted in every size error.
const SizeForm = `integer bytes, or a number with K, M, G or T (powers of 1024; Ki, Mi, Gi, Ti and a trailing B accepted), or "unlimited"`

var sizeUnits = map[string]uint64{
	"":  1,
	"K": 1 << 10,
	"M": 1 << 20,
	"G": 1 << 30,
	"T": 1 << 40,
}

// ParseSize parses a memory budget. It returns 0 for "unlimited" and "0":
// zero means no limit everywhere in the toolkit; the kernel client maps it to
// the module's GB_CG_UNLIMITED.
func ParseSize(s string) (uint64, error) {
	v := strings.TrimSpace(s)
	if strings.EqualFold(v, "unlimited") {
		return 0, nil
	}
	num, unit := splitNumber(v)
	unit = strings.ToUpper(unit)
	unit = strings.TrimSuffix(unit, "B")
	if binary, ok := strings.CutSuffix(unit, "I"); ok && binary != "" {
		unit = binary // "Gi" is "G"; a lone "i" is no unit
	}
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, sizeError(s, "")
	}
	if mult == 1 && strings.Contains(num, ".") {
		return 0, sizeError(s, "a byte count must be an integer")
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, sizeError(s, "")
	}
	r.Mul(r, new(big.Rat).SetInt64(int64(mult)))
	bytes := new(big.Int).Quo(r.Num(), r.Denom())
	if !bytes.IsUint64() || bytes.Uint64() == math.MaxUint64 {
		return 0, sizeError(s, "too large")
	}
	if bytes.Sign() == 0 && r.Sign() != 0 {
		// Zero means no limit: a budget that rounds down to it would lift it.
		return 0, sizeError(s, "less than one byte")
	}
	return bytes.Uint64(), nil
}

// Size is a budget as the config file writes it: a string such as "8G", or
// integer bytes as a TOML integer (ram = 8589934592). Validate checks it, so
// that the error names the key.
type Size string

// UnmarshalTOML takes a TOML string or integer, and any other value as its
// text for Validate to refuse. The decoder calls it with the value's raw text
// when EnableUnmarshalerInterface is on. It never fails: an error here could
// not name the key (it would speak of the "v" of the one-value document
// decoded below), Validate's does.
func (s *Size) UnmarshalTOML(raw []byte) error {
	var doc struct {
		V any `toml:"v"`
	}
	if err := toml.Unmarshal(append([]byte("v = "), raw...), &doc); err != nil {
		// A number beyond TOML's 64-bit integers: its digits, which
		// ParseSize takes below 2^64 bytes and refuses as too large above.
		*s = Size(strings.ReplaceAll(strings.TrimSpace(string(raw)), "_", ""))
		return nil
	}
	switch v := doc.V.(type) {
	case string:
		*s = Size(v)
	case int64:
		*s = Size(strconv.FormatInt(v, 10))
	default:
		*s = Size(strings.TrimSpace(string(raw)))
	}
	return nil
}

// SizeError is a size that does not parse. Its message names the value, why
// it is wrong (when more than its form) and the expected form.
type SizeError struct {
	Key   string // what holds the value, such as GREENBOOST_RAM_LIMIT; "size" when empty
	Value string
	Why   string
}

func (e *SizeError) Error() string {
	key := e.Key
	if key == "" {
		key = "size"
	}
	msg := fmt.Sprintf("invalid %s %q: ", key, e.Value)
	if e.Why != "" {
		msg += e.Why + "; "
	}
	return msg + "expected " + SizeForm
}

func sizeError(s, why string) error {
	return &SizeError{Value: s, Why: why}
}

// splitNumber splits "1.5GiB" into "1.5" and "GiB".
func splitNumber(s string) (string, string) {
	i := 0
	dot := false
	for i < len(s) {
		c := s[i]
		if c >= '0' && c <= '9' {
			i++
			continue
		}
		if c == '.' && !dot && i > 0 {
			dot = true
			i++
			continue
		}
		break
	}
	if strings.HasSuffix(s[:i], ".") {
		return "", s
	}
	return s[:i], s[i:]
}

// FormatSize renders a budget for people: "unlimited", or bytes in the largest
// whole binary unit.
func FormatSize(b uint64) string {
	if b == 0 {
		return "unlimited"
	}
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if b%u.mult == 0 {
			return fmt.Sprintf("%d%s", b/u.mult, u.suffix)
		}
	}
	return fmt.Sprintf("%d", b)
}
