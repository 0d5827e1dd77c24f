package shim

import (
	"encoding/json"
	"unicode/utf8"
)

// member is one member of a JSON object as written.
type member struct {
	key    string // decoded
	rawKey []byte // the key as written, quoted
	value  []byte
}

// splitObject returns the members of data, a JSON object, in order, without
// decoding their values; false where data is not an object. data must be
// valid JSON (encoding/json checked it): this only finds where each member
// begins and ends.
func splitObject(data []byte) ([]member, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}
	var members []member
	for i = skipSpace(data, i+1); i < len(data) && data[i] != '}'; i = skipSpace(data, i) {
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
		keyEnd := skipValue(data, i)
		colon := skipSpace(data, keyEnd)
		if keyEnd < 0 || data[i] != '"' || colon >= len(data) || data[colon] != ':' {
			return nil, false
		}
		start := skipSpace(data, colon+1)
		end := skipValue(data, start)
		if end < 0 {
			return nil, false
		}
		rawKey := data[i:keyEnd]
		members = append(members, member{key: decodeKey(rawKey), rawKey: rawKey, value: data[start:end]})
		i = end
	}
	return members, i < len(data)
}

// splitArray returns the elements of data, a JSON array, as written; false
// where data is not an array. data must be valid JSON, as for splitObject.
func splitArray(data []byte) ([][]byte, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return nil, false
	}
	var elements [][]byte
	for i = skipSpace(data, i+1); i < len(data) && data[i] != ']'; i = skipSpace(data, i) {
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
		end := skipValue(data, i)
		if end < 0 {
			return nil, false
		}
		elements = append(elements, data[i:end])
		i = end
	}
	return elements, i < len(data)
}

// decodeKey decodes a quoted JSON string, as encoding/json does (escapes,
// invalid UTF-8).
func decodeKey(raw []byte) string {
	for _, c := range raw {
		if c == '\\' || c >= utf8.RuneSelf {
			var key string
			_ = json.Unmarshal(raw, &key) // valid JSON: it decodes
			return key
		}
	}
	return string(raw[1 : len(raw)-1])
}

// skipValue returns the index just past the JSON value that starts at
// data[i], or -1 where data ends first.
func skipValue(data []byte, i int) int {
	if i < 0 || i >= len(data) {
		return -1
	}
	switch data[i] {
	case '"':
		for i++; i < len(data); i++ {
			switch data[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return -1
	case '{', '[':
		for depth := 0; i < len(data); {
			switch data[i] {
			case '"':
				if i = skipValue(data, i); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	}
	for i < len(data) && !isDelimiter(data[i]) { // a number, true, false or null
		i++
	}
	return i
}

func skipSpace(data []byte, i int) int {
	for i >= 0 && i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isDelimiter(c byte) bool { return c == ',' || c == '}' || c == ']' || isSpace(c) }
