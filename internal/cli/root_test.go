package cli

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	var bi BuildInfo
	if err := json.Unmarshal([]byte(out), &bi); err != nil {
		t.Fatalf("version --json: %v\n%s", err, out)
	}
	if bi.GoVersion != runtime.Version() || bi.Version == "" {
		t.Errorf("version --json = %+v, want go %s and a version", bi, runtime.Version())
	}
	code, out, _ = run(t, "version")
	if code != ExitOK || !strings.HasPrefix(out, "mtuscope ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version: exit %d, output %q", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"unknown flag", []string{"version", "--nope"}, "unknown flag"},
		{"bad log level", []string{"--log-level", "loud", "version"}, "--log-level"},
		{"bad log format", []string{"--log-format", "xml", "version"}, "--log-format"},
		{"extra argument", []string{"version", "x"}, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(t, tc.args...)
			if code != ExitUsage {
				t.Errorf("exit %d, want %d", code, ExitUsage)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q does not mention %q", errOut, tc.want)
			}
		})
	}
}

func TestCompletion(t *testing.T) {
	code, out, _ := run(t, "completion", "bash")
	if code != ExitOK || !strings.Contains(out, "__start_mtuscope") {
		t.Errorf("completion bash: exit %d, %d bytes", code, len(out))
	}
}

func TestLoggerFormats(t *testing.T) {
	var b bytes.Buffer
	l, err := newLogger(&b, "debug", "json")
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("hello", "k", 1)
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil || m["msg"] != "hello" || m["k"] != float64(1) {
		t.Errorf("json log line %q: %v", b.String(), err)
	}
	b.Reset()
	l, _ = newLogger(&b, "warn", "text")
	l.Info("hidden")
	if b.Len() != 0 {
		t.Errorf("info logged at warn level: %q", b.String())
	}
}
