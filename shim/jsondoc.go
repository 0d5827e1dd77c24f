package shim

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"unicode"
)

// encodeKeepingUnknown encodes v, decoded from original and edited since,
// and adds back the object members of original that v's types do not know
// (an engine on a newer runtime-spec, a vendor extension, what Spec does not
// decode): a transparent wrapper must not drop what it does not understand.
func encodeKeepingUnknown(v any, original []byte) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var orig, edited any
	if err := decodeNumbers(original, &orig); err != nil {
		return nil, err
	}
	if !hasUnknown(orig, reflect.TypeOf(v)) {
		return data, nil
	}
	if err := decodeNumbers(data, &edited); err != nil {
		return nil, err
	}
	return json.Marshal(mergeUnknown(orig, edited, reflect.TypeOf(v)))
}

// decodeNumbers decodes keeping numbers as written (no float64 rounding of
// 64-bit limits).
func decodeNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

// mergeUnknown adds to edited, the encoding of a value of type t, each member
// of orig that t does not know, descending into the members and map values
// both have and into array elements that are the same element (see
// mergeElements). A member t knows is edited's, also when the edit left it
// out (an emptied list that omitempty drops); struct members match
// case-insensitively, as encoding/json matches them to fields, map keys
// exactly.
func mergeUnknown(orig, edited any, t reflect.Type) any {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if !hasUnknown(orig, t) {
		return edited // nothing to add: the common case, without matching elements
	}
	switch o := orig.(type) {
	case map[string]any:
		e, ok := edited.(map[string]any)
		if !ok || t == nil {
			return edited
		}
		switch t.Kind() {
		case reflect.Map:
			for k, ov := range o {
				if ev, found := e[k]; found {
					e[k] = mergeUnknown(ov, ev, t.Elem())
				}
			}
		case reflect.Struct:
			fields := jsonFields(t)
			// An index of e's keys by case-folding class: a scan of e per
			// member of o made a spec with many members take minutes.
			keys := make(map[string]string, len(e))
			for k := range e {
				keys[foldClass(k)] = k
			}
			for k, ov := range o {
				field, known := fields[foldClass(k)]
				if !known {
					e[k] = ov
					continue
				}
				ek, found := k, true // the exact key first, as encoding/json
				if _, exact := e[k]; !exact {
					ek, found = keys[foldClass(k)]
				}
				if found {
					e[ek] = mergeUnknown(ov, e[ek], field)
				}
			}
		}
		return e
	case []any:
		e, ok := edited.([]any)
		if !ok || t == nil || (t.Kind() != reflect.Slice && t.Kind() != reflect.Array) {
			return edited
		}
		mergeElements(o, e, t.Elem())
		return e
	}
	return edited
}

// hasUnknown reports whether v, as decodeNumbers gives it, has an object
// member anywhere in it that type t does not know.
func hasUnknown(v any, t reflect.Type) bool {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return false
	}
	switch v := v.(type) {
	case map[string]any:
		switch t.Kind() {
		case reflect.Map:
			for _, mv := range v {
				if hasUnknown(mv, t.Elem()) {
					return true
				}
			}
		case reflect.Struct:
			fields := jsonFields(t)
			for k, mv := range v {
				if field, known := fields[foldClass(k)]; !known || hasUnknown(mv, field) {
					return true
				}
			}
		}
	case []any:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for _, e := range v {
				if hasUnknown(e, t.Elem()) {
					return true
				}
			}
		}
	}
	return false
}

// mergeElements merges each element of edited with the element of orig it
// is: the one whose known members are the same, matched by content, not
// index, since the edits may remove or insert elements before others (CDI
// replaces a mount of the same destination, the user-namespace edit drops a
// device node). An element the edits made or changed matches none and stays
// as it is; equal ones pair in order.
func mergeElements(orig, edited []any, elem reflect.Type) {
	unmatched := map[string][]int{} // known members' encoding → orig indices
	for j, o := range orig {
		if key, ok := knownEncoding(o, elem); ok {
			unmatched[key] = append(unmatched[key], j)
		}
	}
	for i, e := range edited {
		key, ok := knownEncoding(e, elem)
		if js := unmatched[key]; ok && len(js) > 0 {
			edited[i] = mergeUnknown(orig[js[0]], e, elem)
			unmatched[key] = js[1:]
		}
	}
}

// knownEncoding encodes what type t knows of v, as decodeNumbers gives it:
// the same for an element as read and as written back unchanged. Only
// objects and arrays can hold unknown members: for others it is false.
func knownEncoding(v any, t reflect.Type) (string, bool) {
	switch v.(type) {
	case map[string]any, []any:
	default:
		return "", false
	}
	data, err := json.Marshal(v)
	if err != nil {
		return "", false
	}
	known := reflect.New(t)
	if json.Unmarshal(data, known.Interface()) != nil {
		return "", false
	}
	if data, err = json.Marshal(known.Interface()); err != nil {
		return "", false
	}
	return string(data), true
}

// jsonFields maps the case-folding class of each JSON member name of the
// struct type t (embedded structs' members included) to its Go type.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case !f.IsExported() || name == "-":
		case f.Anonymous && name == "" && ft.Kind() == reflect.Struct:
			for k, v := range jsonFields(ft) {
				fields[k] = v
			}
		case name == "":
			fields[foldClass(f.Name)] = f.Type
		default:
			fields[foldClass(name)] = f.Type
		}
	}
	return fields
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
