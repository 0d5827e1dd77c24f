package shim

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"unicode"
)

// decodeKeepingUnknown decodes data into v, a pointer to a runtime-spec type,
// and returns data itself when it has members those types do not know (an
// engine on a newer runtime-spec, a vendor extension), nil otherwise, for
// encodeKeepingUnknown to put them back: a transparent wrapper must not drop
// what it does not understand.
func decodeKeepingUnknown(data []byte, v any) ([]byte, error) {
	if err := json.Unmarshal(data, v); err != nil {
		return nil, err
	}
	// The types are learnt by now, so this second, strict pass is cheap.
	strict := json.NewDecoder(bytes.NewReader(data))
	strict.DisallowUnknownFields()
	if strict.Decode(reflect.New(reflect.TypeOf(v).Elem()).Interface()) != nil {
		return data, nil
	}
	return nil, nil
}

// encodeKeepingUnknown encodes v and, when original is not nil, adds back the
// object members of original that v's encoding lacks.
func encodeKeepingUnknown(v any, original []byte) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil || original == nil {
		return data, err
	}
	var orig, edited any
	if err := decodeNumbers(original, &orig); err != nil {
		return nil, err
	}
	if err := decodeNumbers(data, &edited); err != nil {
		return nil, err
	}
	return json.Marshal(mergeUnknown(orig, edited))
}

// decodeNumbers decodes keeping numbers as written (no float64 rounding of
// 64-bit limits).
func decodeNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

// mergeUnknown adds to edited each member of orig it lacks, descending into
// objects both have and into array elements that are the same element
// (edited's members all equal in orig: the edits append, and keep the
// engine's order); members match case-insensitively, as encoding/json
// matches them to fields. Everything else comes from edited.
func mergeUnknown(orig, edited any) any {
	switch o := orig.(type) {
	case map[string]any:
		e, ok := edited.(map[string]any)
		if !ok {
			return edited
		}
		// An index of e's keys by case-folding class: a scan of e per member
		// of o made a spec with many unknown members take minutes.
		keys := make(map[string]string, len(e))
		for k := range e {
			keys[foldClass(k)] = k
		}
		for k, ov := range o {
			ek, found := k, true // the exact key first, as encoding/json
			if _, exact := e[k]; !exact {
				ek, found = keys[foldClass(k)]
			}
			if found {
				e[ek] = mergeUnknown(ov, e[ek])
			} else {
				e[k] = ov
				keys[foldClass(k)] = k
			}
		}
		return e
	case []any:
		e, ok := edited.([]any)
		if !ok {
			return edited
		}
		for i := 0; i < len(o) && i < len(e); i++ {
			if within(e[i], o[i]) {
				e[i] = mergeUnknown(o[i], e[i])
			}
		}
		return e
	}
	return edited
}

// within reports whether everything in edited is in orig: orig may have
// more object members, nothing else differs.
func within(edited, orig any) bool {
	switch e := edited.(type) {
	case map[string]any:
		o, ok := orig.(map[string]any)
		if !ok {
			return false
		}
		for k, ev := range e {
			ok, found := foldedKey(o, k)
			if !found || !within(ev, o[ok]) {
				return false
			}
		}
		return true
	case []any:
		o, ok := orig.([]any)
		if !ok || len(o) != len(e) {
			return false
		}
		for i := range e {
			if !within(e[i], o[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(edited, orig)
}

// foldClass maps a key to one member of its case-folding class (each rune
// to the least of its strings.EqualFold equivalents): keys equal under
// strings.EqualFold, as encoding/json matches them, get the same class.
func foldClass(key string) string {
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, key)
}

func foldedKey(m map[string]any, key string) (string, bool) {
	if _, ok := m[key]; ok {
		return key, true
	}
	for k := range m {
		if strings.EqualFold(k, key) {
			return k, true
		}
	}
	return "", false
}
