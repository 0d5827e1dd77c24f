package shim

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"unicode"
)

// encodeKeepingUnknown encodes v, decoded from original and edited since,
// and adds back the object members of original that v's types do not know
// (an engine on a newer runtime-spec, a vendor extension, what Spec does not
// decode): a transparent wrapper must not drop what it does not understand.
// original must be valid JSON (it decoded into v).
func encodeKeepingUnknown(v any, original []byte) ([]byte, error) {
	edited, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return mergeEncoded(original, edited, reflect.TypeOf(v))
}

// mergeEncoded merges orig, a value of type t as read, into edited, its
// encoding after the edits. An object of a struct type is patched member by
// member (patchObject), so what t does not know is copied byte for byte
// without decoding it, however large (a seccomp profile); another value is
// edited's, merged decoded (mergeUnknown) where orig has members t does not
// know.
func mergeEncoded(orig, edited []byte, t reflect.Type) ([]byte, error) {
	t = derefType(t)
	if t != nil && t.Kind() == reflect.Struct {
		if o, ok := splitObject(orig); ok {
			if e, ok := splitObject(edited); ok {
				return patchObject(o, e, t)
			}
		}
	}
	if !hasUnknown(orig, t) {
		return edited, nil // nothing to add: the common case
	}
	var o, e any
	if err := decodeNumbers(orig, &o); err != nil {
		return nil, err
	}
	if err := decodeNumbers(edited, &e); err != nil {
		return nil, err
	}
	return json.Marshal(mergeUnknown(o, e, t))
}

// patchObject writes the object orig with each member t knows replaced by
// edited's (merged with what its value in orig has that t does not know),
// or left out where edited has none; each member t does not know as it was;
// then edited's members that orig lacks. Members match by case folding, as
// encoding/json matches them to fields; several that match one field
// (encoding/json decodes each into it, in order) are written once, with
// what each has that t does not know.
func patchObject(orig, edited []member, t reflect.Type) ([]byte, error) {
	fields := jsonFields(t)
	editedAt := make(map[string]int, len(edited)) // fold class → index in edited
	for j, m := range edited {
		editedAt[foldClass(m.key)] = j
	}
	classes := make([]string, len(orig))
	occurrences := map[string][]int{} // fold class of a known member → its indices in orig
	for i, m := range orig {
		classes[i] = foldClass(m.key)
		if fields[classes[i]] != nil {
			occurrences[classes[i]] = append(occurrences[classes[i]], i)
		}
	}
	written := make([]bool, len(edited))
	out := []byte{'{'}
	add := func(key, value []byte) {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(append(append(out, key...), ':'), value...)
	}
	for i, m := range orig {
		class := classes[i]
		field := fields[class]
		if field == nil {
			add(m.rawKey, m.value)
			continue
		}
		j, kept := editedAt[class]
		if !kept || written[j] {
			continue // the edits left it out, or it is written already
		}
		value := edited[j].value
		for _, i := range occurrences[class] {
			var err error
			if value, err = mergeEncoded(orig[i].value, value, field); err != nil {
				return nil, err
			}
		}
		add(edited[j].rawKey, value)
		written[j] = true
	}
	for j, m := range edited {
		if !written[j] {
			add(m.rawKey, m.value)
		}
	}
	return append(out, '}'), nil
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
	t = derefType(t)
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

// hasUnknown reports whether v, the JSON encoding of a value of type t as
// written, has an object member anywhere in it that t does not know. It
// reads v as written, without decoding it.
func hasUnknown(v []byte, t reflect.Type) bool {
	t = derefType(t)
	if t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.Struct:
		members, _ := splitObject(v)
		fields := jsonFields(t)
		for _, m := range members {
			if field := fields[foldClass(m.key)]; field == nil || hasUnknown(m.value, field) {
				return true
			}
		}
	case reflect.Map:
		members, _ := splitObject(v)
		for _, m := range members {
			if hasUnknown(m.value, t.Elem()) {
				return true
			}
		}
	case reflect.Slice, reflect.Array:
		elements, _ := splitArray(v)
		for _, e := range elements {
			if hasUnknown(e, t.Elem()) {
				return true
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

func derefType(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// fieldsOf caches jsonFields: a spec's array elements ask again for their
// type's fields, one element at a time.
var fieldsOf sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields maps the case-folding class of each JSON member name of the
// struct type t (embedded structs' members included) to its Go type.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if fields, ok := fieldsOf.Load(t); ok {
		return fields.(map[string]reflect.Type)
	}
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
	fieldsOf.Store(t, fields)
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
