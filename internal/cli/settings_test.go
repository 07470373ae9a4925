package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/mtuscope/mtuscope/internal/strictyaml"
	"github.com/mtuscope/mtuscope/server"
	"github.com/mtuscope/mtuscope/watch"
)

// flatten turns a config into its key paths and printed values.
func flatten(t *testing.T, cfg any) map[string]string {
	t.Helper()
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if sub, ok := v.(map[string]any); ok {
			for k, x := range sub {
				walk(prefix+k+".", x)
			}
			return
		}
		out[strings.TrimSuffix(prefix, ".")] = fmt.Sprint(v)
	}
	walk("", m)
	return out
}

// otherValue is a command-line value for a flag unlike its default.
func otherValue(f *pflag.Flag) string {
	switch f.Value.Type() {
	case "int":
		return "7777"
	case "float64":
		return "0.125"
	case "duration":
		return "97s"
	case "intSlice":
		return "7,8"
	case "stringSlice":
		return "a.example,b.example"
	}
	return "other.example:1"
}

// checkSettings: every setting's flag sets its config key and no other,
// and every key a flag names is a key of the config file.
func checkSettings[C any](t *testing.T, defaults func() C, list []setting[C]) {
	fileKeys := map[string]bool{}
	for _, k := range strictyaml.Keys(reflect.TypeOf(defaults())) {
		fileKeys[k] = true
	}
	base := flatten(t, defaults())
	byKey := map[string]string{}
	for _, s := range list {
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		b := bindSettings(fs, defaults(), list)
		key := b.keys()[s.flag]
		if key == "" || !fileKeys[key] {
			t.Errorf("--%s sets no config key (got %q)", s.flag, key)
			continue
		}
		if other, dup := byKey[key]; dup {
			t.Errorf("--%s and --%s both set %s", other, s.flag, key)
		}
		byKey[key] = s.flag
		v := otherValue(fs.Lookup(s.flag))
		if err := fs.Parse([]string{"--" + s.flag + "=" + v}); err != nil {
			t.Fatalf("--%s=%s: %v", s.flag, v, err)
		}
		cfg := defaults()
		b.apply(fs, &cfg)
		got := flatten(t, cfg)
		for k, want := range base {
			switch {
			case k == key && got[k] == want:
				t.Errorf("--%s=%s left %s at %s", s.flag, v, k, want)
			case k != key && got[k] != want:
				t.Errorf("--%s=%s changed %s too (%s to %s)", s.flag, v, k, want, got[k])
			}
		}
		// A flag not given leaves the file's value alone.
		fs = pflag.NewFlagSet("test", pflag.ContinueOnError)
		b = bindSettings(fs, defaults(), list)
		cfg = defaults()
		b.apply(fs, &cfg)
		if !reflect.DeepEqual(cfg, defaults()) {
			t.Errorf("no flag given, yet the config changed")
		}
	}
}

func TestServeSettingsSetTheirKeys(t *testing.T) {
	checkSettings(t, server.Defaults, serveSettings)
}

func TestWatchSettingsSetTheirKeys(t *testing.T) {
	checkSettings(t, watch.Defaults, watchSettings)
}

// TestCheckConfigPrintsTheEffectiveConfig: --check-config prints the
// configuration the command would run with (file, then flags over it) as
// YAML that --config reads back to the same, secrets redacted; it used to
// print one summary line.
func TestCheckConfigPrintsTheEffectiveConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("MTUSCOPE_TOKEN", "")
	secret := "s3cret-operator-token-0123456789"
	serveFile := write("serve.yaml", "rungs:\n  step: 4\nlimits:\n  burst: 7\ntoken: "+secret+"\n")
	code, out, errOut := run(t, "serve", "--config", serveFile, "--rung-port", "12000", "--check-config")
	if code != ExitOK || !strings.HasPrefix(out, "# configuration OK: 61 rungs") {
		t.Fatalf("serve --check-config: exit %d, %q %q", code, out, errOut)
	}
	if strings.Contains(out, secret) || !strings.Contains(out, "token: "+redacted) {
		t.Errorf("the token is not redacted:\n%s", out)
	}
	got, err := server.LoadConfig(write("printed.yaml", out))
	if err != nil {
		t.Fatalf("the printed configuration does not load: %v\n%s", err, out)
	}
	want := server.Defaults()
	want.Rungs.Step, want.Limits.Burst, want.Rungs.BasePort, want.Token = 4, 7, 12000, redacted
	if !reflect.DeepEqual(flatten(t, got), flatten(t, want)) { // nil and empty lists alike
		t.Errorf("printed\n%+v\nwant\n%+v", got, want)
	}

	watchFile := write("watch.yaml", "retention: 48h\nmonitor:\n  top_n: 20\nwebhook: https://hooks.example/x?key="+secret+"\n")
	code, out, errOut = run(t, "watch", "--config", watchFile, "--port", "8443", "--alertmanager", "https://am:"+secret+"@am.example/", "--check-config")
	if code != ExitOK || !strings.HasPrefix(out, "# configuration OK: ports [8443]") {
		t.Fatalf("watch --check-config: exit %d, %q %q", code, out, errOut)
	}
	if strings.Contains(out, secret) {
		t.Errorf("a URL secret is printed:\n%s", out)
	}
	wgot, err := watch.LoadConfig(write("wprinted.yaml", out))
	if err != nil {
		t.Fatalf("the printed configuration does not load: %v\n%s", err, out)
	}
	wwant := watch.Defaults()
	wwant.Retention, wwant.Monitor.TopN, wwant.Ports = 48*time.Hour, 20, []int{8443}
	wwant.Webhook, wwant.Alertmanager = "https://hooks.example/x?"+redacted, "https://am:"+redacted+"@am.example/"
	if !reflect.DeepEqual(flatten(t, wgot), flatten(t, wwant)) {
		t.Errorf("printed\n%+v\nwant\n%+v", wgot, wwant)
	}
}
