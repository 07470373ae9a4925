package strictyaml

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

type inner struct {
	First int      `yaml:"first"`
	Hosts []string `yaml:"hosts"`
}

type sample struct {
	HTTPS string        `yaml:"https"`
	Wait  time.Duration `yaml:"wait"`
	Rate  float64       `yaml:"rate"`
	Ports []int         `yaml:"ports"`
	Rungs inner         `yaml:"rungs"`
	Skip  string        `yaml:"-"`
}

func TestDecodeErrorsNameKeyAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string // all in the error
	}{
		{"unknown key", "htps: \":443\"\n", []string{"line 1: htps: unknown key", `did you mean "https"`}},
		{"unknown nested key", "wait: 1s\nrungs:\n  frist: 1200\n", []string{"line 3: rungs.frist: unknown key", `"first"`}},
		{"unknown key far from any", "zzzzzzzz: 1\n", []string{"line 1: zzzzzzzz: unknown key; the top level has https, wait, rate, ports, rungs"}},
		{"a dash field is unknown", "skip: x\n", []string{"line 1: skip: unknown key"}},
		{"wrong type", "https: x\nrungs:\n  first: big\n", []string{`line 3: rungs.first: want a whole number, got "big"`}},
		{"bad duration", "wait: soon\n", []string{`line 1: wait: want a duration`}},
		{"list item", "ports: [443, x]\n", []string{`line 1: ports[1]: want a whole number, got "x"`}},
		{"scalar for list", "ports: 443\n", []string{"line 1: ports: want a list"}},
		{"scalar for section", "rungs: 5\n", []string{`line 1: rungs: want keys (key: value), got "5"`}},
		{"list for scalar", "https:\n  - a\n", []string{"line 2: https: want a string, got a list"}},
		{"repeated key", "https: a\nwait: 1s\nhttps: b\n", []string{"line 3: https: set twice (first on line 1)"}},
		{"two documents", "https: a\n---\nhttps: b\n", []string{"line 2: a second YAML document"}},
		{"not yaml", "{{{", []string{"not YAML"}},
		{"not a mapping", "hello\n", []string{`the file: want keys (key: value), got "hello"`}},
		{"alias", "https: &a x\nrungs:\n  hosts: [*a]\n", []string{"line 3: rungs.hosts[0]: aliases are not accepted"}},
		{"several, in line order", "rungs:\n  frist: 1\nhtps: 2\n", []string{"line 2: rungs.frist", "line 3: htps"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s sample
			err := Decode([]byte(tc.in), &s)
			if err == nil {
				t.Fatalf("accepted %q", tc.in)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "sample") || strings.Contains(msg, "strictyaml.") {
				t.Errorf("error %q names a Go type", msg)
			}
			if tc.name == "several, in line order" && strings.Index(msg, "line 2") > strings.Index(msg, "line 3") {
				t.Errorf("errors out of line order: %q", msg)
			}
		})
	}
}

func TestDecodeKeepsDefaults(t *testing.T) {
	s := sample{HTTPS: ":8443", Wait: time.Second, Ports: []int{443}, Rungs: inner{First: 1220}}
	if err := Decode([]byte("# only a comment\n"), &s); err != nil {
		t.Fatal(err)
	}
	if err := Decode(nil, &s); err != nil {
		t.Fatal(err)
	}
	if err := Decode([]byte("rate: 2.5\nrungs:\n  hosts: [a, b]\nwait: 90s\n"), &s); err != nil {
		t.Fatal(err)
	}
	want := sample{HTTPS: ":8443", Wait: 90 * time.Second, Rate: 2.5, Ports: []int{443}, Rungs: inner{First: 1220, Hosts: []string{"a", "b"}}}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got %+v, want %+v", s, want)
	}
	if err := Decode([]byte("rungs:\n"), &s); err != nil {
		t.Errorf("an empty section: %v", err)
	}
	var notStruct int
	if err := Decode([]byte("a: 1"), &notStruct); err == nil {
		t.Error("a non-struct destination accepted")
	}
}

func TestKeys(t *testing.T) {
	got := Keys(reflect.TypeOf(sample{}))
	want := []string{"https", "wait", "rate", "ports", "rungs.first", "rungs.hosts"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Keys = %v, want %v", got, want)
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts yaml.v3's own
// strict decoding accepts too, with the same result.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"https: a\n", "rungs:\n  first: 3\n  hosts: [x]\n", "ports: [1, 2]\nwait: 5m\n",
		"a: &x 1\nb: *x\n", "---\n---\n", "https: [\n", "rate: .inf\n", "? [a]\n: b\n", "https: !!binary aGk=\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var a sample
		if err := Decode(b, &a); err != nil {
			return
		}
		var y sample
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&y); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("Decode accepted %q, yaml.v3 refused it: %v", b, err)
		}
		if !reflect.DeepEqual(a, y) {
			t.Fatalf("%q: Decode %+v, yaml.v3 %+v", b, a, y)
		}
	})
}

func TestKeyOf(t *testing.T) {
	var s sample
	for _, tc := range []struct {
		ptr  any
		want string
	}{
		{&s.HTTPS, "https"}, {&s.Ports, "ports"}, {&s.Rungs.First, "rungs.first"}, {&s.Rungs.Hosts, "rungs.hosts"},
	} {
		if got, ok := KeyOf(&s, tc.ptr); !ok || got != tc.want {
			t.Errorf("KeyOf = %q %v, want %q", got, ok, tc.want)
		}
	}
	var other sample
	if k, ok := KeyOf(&s, &other.HTTPS); ok {
		t.Errorf("a field of another struct found as %q", k)
	}
	if k, ok := KeyOf(&s, &s.Rungs); ok {
		t.Errorf("a section found as a setting: %q", k)
	}
	if k, ok := KeyOf(&s, &s.Skip); ok {
		t.Errorf("a field without a key found as %q", k)
	}
}
