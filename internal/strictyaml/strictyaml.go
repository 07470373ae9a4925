// Package strictyaml reads a config file into a struct strictly: one YAML
// document, no key the struct does not have, no value of the wrong kind;
// every error names the key's path and its line ("line 3: rungs.frist:
// unknown key; rungs has first, last, ..."), never a Go type.
package strictyaml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Decode reads b, one YAML document, over dst (a pointer to a struct whose
// fields carry yaml tags), leaving what b does not mention as it was.
// Unknown keys, repeated keys, several documents and values that do not
// fit their field are errors, all of them reported, in line order.
func Decode(b []byte, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("strictyaml: want a pointer to a struct, got %T", dst)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file: the defaults
		}
		return fmt.Errorf("not YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return fmt.Errorf("not YAML after the first document: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return fmt.Errorf("line %d: a second YAML document; a config file holds one", line)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil // only comments
	}
	var errs []lineError
	check(root, rv.Elem().Type(), "", &errs)
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].line < errs[j].line })
		out := make([]error, len(errs))
		for i, e := range errs {
			out[i] = e
		}
		return errors.Join(out...)
	}
	// Every key and value was checked above; the decode cannot meet an
	// unknown key, but KnownFields keeps the two in step should they drift.
	dec = yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}

type lineError struct {
	line int
	msg  string
}

func (e lineError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// Keys returns the dotted paths of every leaf setting of a struct type
// (a struct field's own fields, not the struct), in field order:
// "https", "tls.cert_file", ...
func Keys(t reflect.Type) []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for _, f := range fields(t) {
			if f.typ.Kind() == reflect.Struct && f.typ != durationType {
				walk(f.typ, prefix+f.name+".")
				continue
			}
			out = append(out, prefix+f.name)
		}
	}
	walk(t, "")
	return out
}

var durationType = reflect.TypeOf(time.Duration(0))

type field struct {
	name  string
	typ   reflect.Type
	index int
}

// fields lists a struct type's yaml keys; a field without a tag has its
// lowercased name, as yaml.v3 gives it, and "-" fields are left out.
func fields(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, field{name, f.Type, i})
	}
	return out
}

// check walks node against t, collecting what does not fit.
func check(n *yaml.Node, t reflect.Type, path string, errs *[]lineError) {
	bad := func(n *yaml.Node, format string, a ...any) {
		*errs = append(*errs, lineError{n.Line, fmt.Sprintf(format, a...)})
	}
	name := path
	if name == "" {
		name = "the file"
	}
	if n.Kind == yaml.AliasNode {
		bad(n, "%s: aliases are not accepted in a config file", name)
		return
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct && t != durationType:
		if n.Kind != yaml.MappingNode {
			if path != "" && n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return // "tls:" with nothing under it
			}
			bad(n, "%s: want keys (key: value), got %s", name, describe(n))
			return
		}
		known := fields(t)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := k.Value
			full := key
			if path != "" {
				full = path + "." + key
			}
			if k.Kind != yaml.ScalarNode {
				bad(k, "%s: a key must be a plain name, got %s", name, describe(k))
				continue
			}
			if line, dup := seen[key]; dup {
				bad(k, "%s: set twice (first on line %d)", full, line)
				continue
			}
			seen[key] = k.Line
			f, ok := lookup(known, key)
			if !ok {
				bad(k, "%s: unknown key%s", full, hint(path, key, known))
				continue
			}
			check(v, f.typ, full, errs)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		if n.Kind != yaml.SequenceNode {
			bad(n, "%s: want a list ([a, b] or one \"- item\" a line), got %s", name, describe(n))
			return
		}
		for i, item := range n.Content {
			check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			bad(n, "%s: want %s, got %s", name, want(t), describe(n))
			return
		}
		v := reflect.New(t)
		if err := n.Decode(v.Interface()); err != nil {
			bad(n, "%s: want %s, got %q", name, want(t), n.Value)
		}
	}
}

func lookup(known []field, key string) (field, bool) {
	for _, f := range known {
		if f.name == key {
			return f, true
		}
	}
	return field{}, false
}

// hint names the closest known key, or lists them when none is close.
func hint(path, key string, known []field) string {
	best, bestD := "", 3
	names := make([]string, len(known))
	for i, f := range known {
		names[i] = f.name
		if d := distance(key, f.name); d < bestD {
			best, bestD = f.name, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	where := "the top level"
	if path != "" {
		where = path
	}
	return fmt.Sprintf("; %s has %s", where, strings.Join(names, ", "))
}

// distance is the Levenshtein distance between a and b, bytes counted.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func want(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration (90s, 5m, 720h)"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	}
	return "a value"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "keys"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// KeyOf returns the dotted key path of the field of *structPtr that
// fieldPtr points to ("rungs.base_port"), or false when fieldPtr points to
// no leaf setting of it.
func KeyOf(structPtr, fieldPtr any) (string, bool) {
	target := reflect.ValueOf(fieldPtr)
	if target.Kind() != reflect.Pointer {
		return "", false
	}
	var walk func(v reflect.Value, prefix string) (string, bool)
	walk = func(v reflect.Value, prefix string) (string, bool) {
		for _, f := range fields(v.Type()) {
			fv := v.Field(f.index)
			if f.typ.Kind() == reflect.Struct && f.typ != durationType {
				if k, ok := walk(fv, prefix+f.name+"."); ok {
					return k, true
				}
				continue
			}
			if fv.Addr().Pointer() == target.Pointer() && fv.Type() == target.Type().Elem() {
				return prefix + f.name, true
			}
		}
		return "", false
	}
	v := reflect.ValueOf(structPtr)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return "", false
	}
	return walk(v.Elem(), "")
}
