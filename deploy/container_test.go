package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/craftpcap"
	"github.com/mtuscope/mtuscope/internal/testnet"
)

// podman runs podman on a storage of the test's own (vfs: no mounts left
// behind), with the settings that work on these machines (docs/facts.md).
type podman struct {
	t       *testing.T
	storage string
}

func (p podman) cmd(ctx context.Context, args ...string) *exec.Cmd {
	base := []string{"--root", filepath.Join(p.storage, "root"), "--runroot", filepath.Join(p.storage, "run"),
		"--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "none"}
	return exec.CommandContext(ctx, "podman", append(base, args...)...)
}

// run returns what podman (or the container) wrote on standard output.
func (p podman) run(ctx context.Context, args ...string) string {
	p.t.Helper()
	var stderr bytes.Buffer
	cmd := p.cmd(ctx, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		p.t.Fatalf("podman %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

// runArgs are the options every container of the test runs with.
var runArgs = []string{"--runtime", "runc", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}

// staticBinary builds mtuscope without cgo, as the image needs it.
func staticBinary(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go") // go test puts GOROOT/bin first in PATH
	if err != nil {
		t.Fatalf("the go command: %v", err)
	}
	out := filepath.Join(dir, "mtuscope")
	cmd := exec.Command(goBin, "build", "-trimpath", "-o", out, "../cmd/mtuscope")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("static build: %v\n%s", err, b)
	}
	if b, _ := os.ReadFile(out); bytes.Contains(b, []byte("/lib64/ld-linux")) {
		t.Fatal("the binary asks for a dynamic loader: not static")
	}
	return out
}

func TestContainerImage(t *testing.T) {
	testnet.Require(t)
	testnet.RequireTools(t, "podman", "runc")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	build := t.TempDir()
	staticBinary(t, build)
	for _, f := range []string{"/etc/ssl/certs/ca-certificates.crt"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("build context: %v (install ca-certificates)", err)
		}
		os.WriteFile(filepath.Join(build, filepath.Base(f)), b, 0o644)
	}
	os.Mkdir(filepath.Join(build, "data"), 0o755)
	p := podman{t: t, storage: t.TempDir()}
	tag := "localhost/mtuscope-test:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	p.run(ctx, "build", "-q", "-t", tag, "-f", filepath.Join("container", "Containerfile"), build)

	var inspect []struct {
		Config struct {
			User       string
			Entrypoint []string
		}
		RootFS struct{ Layers []string }
	}
	if err := json.Unmarshal([]byte(p.run(ctx, "image", "inspect", tag)), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("image inspect: %v", err)
	}
	if u := inspect[0].Config.User; u == "" || strings.HasPrefix(u, "0") || strings.HasPrefix(u, "root") {
		t.Errorf("image runs as %q, want a non-root user", u)
	}

	// The binary runs in it, as that user, with no network.
	var v struct {
		GoVersion string `json:"go_version"`
	}
	out := p.run(ctx, append(append([]string{"run", "--rm"}, runArgs...), tag, "version", "--json")...)
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.GoVersion == "" {
		t.Fatalf("version in the container: %v\n%s", err, out)
	}

	// watch replays a capture in it with no privilege: three handshakes
	// (SYN, SYN-ACK, ACK) that never send a ClientHello, from one client.
	capDir := t.TempDir()
	w := craftpcap.NewWriter(t, filepath.Join(capDir, "in.pcap"))
	cli, srv := [4]byte{198, 51, 100, 2}, [4]byte{203, 0, 113, 10}
	for i := range 3 {
		ts := time.Date(2026, 11, 21, 3, 0, i, 0, time.UTC)
		port := uint16(40000 + i)
		w.TCP(t, ts, cli, srv, port, 443, 1000, 0, 0x02, nil)
		w.TCP(t, ts.Add(time.Millisecond), srv, cli, 443, port, 5000, 1001, 0x12, nil)
		w.TCP(t, ts.Add(2*time.Millisecond), cli, srv, port, 443, 1001, 5001, 0x10, nil)
	}
	w.Close(t)
	os.Chmod(capDir, 0o755)
	os.Chmod(filepath.Join(capDir, "in.pcap"), 0o644)
	out = p.run(ctx, append(append([]string{"run", "--rm"}, runArgs...), "-v", capDir+":/in:ro", tag,
		"watch", "--read", "/in/in.pcap", "--json", "--admin", "")...)
	var doc struct {
		Networks []struct {
			Handshakes int `json:"handshakes"`
		} `json:"networks"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Networks) != 1 || doc.Networks[0].Handshakes != 3 {
		t.Fatalf("watch --read in the container: %v\n%s", err, out)
	}

	// serve starts on its defaults with a volume for its data, writes its
	// database there and stops cleanly on SIGTERM.
	data := t.TempDir()
	if err := os.Chown(data, 65532, 65532); err != nil {
		t.Fatal(err)
	}
	name := "mtuscope-test-serve-" + strings.ReplaceAll(filepath.Base(data), "_", "")
	p.run(ctx, append(append([]string{"run", "-d", "--name", name}, runArgs...), "-v", data+":/var/lib/mtuscope", tag)...)
	defer p.cmd(context.Background(), "rm", "-f", name).Run()
	var logs string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		logs = p.run(ctx, "logs", name)
		if strings.Contains(logs, "page: https://") {
			break
		}
	}
	if !strings.Contains(logs, "page: https://") {
		t.Fatalf("serve did not print its page URL:\n%s", logs)
	}
	p.run(ctx, "stop", "-t", "20", name)
	state := strings.TrimSpace(p.run(ctx, "inspect", "--format", "{{.State.ExitCode}}", name))
	if state != "0" {
		t.Errorf("serve exited with %s after SIGTERM:\n%s", state, p.run(ctx, "logs", name))
	}
	if _, err := os.Stat(filepath.Join(data, "reports.db")); err != nil {
		t.Errorf("no reports database in the volume: %v", err)
	}
}
