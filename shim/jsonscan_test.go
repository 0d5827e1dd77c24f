package shim

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzSplitJSON: for any valid JSON object, splitObject finds the members
// encoding/json finds, in order, each value exactly as written; for any
// array, splitArray finds its elements so.
func FuzzSplitJSON(f *testing.F) {
	for _, seed := range []string{
		`{}`, ` { } `, `{"a":1}`, "{\n\t\"a\" : [1, {\"b\": \"}\"}],\r\n\"c\":null }",
		`{"k\"ey":"v\\\"al]","\u00e9":true,"":-1.5e+3,"x":{"y":[[],{}]}}`,
		`{"a":1,"a":2,"A":"dup"}`, `[1]`, ` [ "]" , {"a":[]} ,null,-0.5] `, `[]`, `"s"`, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		members, ok := splitObject(data)
		if !json.Valid(data) {
			return // splitObject takes only what encoding/json accepted
		}
		checkSplitArray(t, data, bytes.HasPrefix(bytes.TrimSpace(data), []byte("[")))
		want, isObject := membersAsDecoded(t, data)
		if !isObject {
			if ok {
				t.Fatalf("%q is not an object, split into %q", data, members)
			}
			return
		}
		if !ok || len(members) != len(want) {
			t.Fatalf("%q: split into %d members (%v), encoding/json finds %d", data, len(members), ok, len(want))
		}
		for i, m := range members {
			if m.key != want[i].key || !bytes.Equal(m.value, want[i].value) {
				t.Fatalf("%q: member %d split as %q: %q, encoding/json reads %q: %q", data, i, m.key, m.value, want[i].key, want[i].value)
			}
			var rawKey string
			if json.Unmarshal(m.rawKey, &rawKey) != nil || rawKey != m.key {
				t.Fatalf("%q: member %d key %q written as %q", data, i, m.key, m.rawKey)
			}
		}
	})
}

// membersAsDecoded returns the members of the JSON object data in order,
// each value as written, as encoding/json reads them; false where data is
// not an object.
func membersAsDecoded(t testing.TB, data []byte) ([]member, bool) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var members []member
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			t.Fatal(err)
		}
		members = append(members, member{key: key.(string), value: value})
	}
	return members, true
}

func checkSplitArray(t *testing.T, data []byte, isArray bool) {
	elements, ok := splitArray(data)
	if ok != isArray {
		t.Fatalf("%q: splitArray says array %v", data, ok)
	}
	var want []json.RawMessage
	if !isArray || json.Unmarshal(data, &want) != nil {
		return
	}
	if len(elements) != len(want) {
		t.Fatalf("%q: split into %d elements, encoding/json finds %d", data, len(elements), len(want))
	}
	for i := range want {
		var w bytes.Buffer
		_ = json.Compact(&w, want[i])
		var g bytes.Buffer
		if err := json.Compact(&g, elements[i]); err != nil || !bytes.Equal(g.Bytes(), w.Bytes()) || len(bytes.TrimSpace(elements[i])) != len(elements[i]) {
			t.Fatalf("%q: element %d split as %q, encoding/json reads %q", data, i, elements[i], want[i])
		}
	}
}
