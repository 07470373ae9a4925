package cli

import (
	"net"
	"strings"
	"testing"
)

// TestServePortTaken: serve whose page port another program holds says so
// on standard error and exits non-zero (it used to exit 1 saying nothing).
func TestServePortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, out, errOut := run(t, "serve", "--data-dir", t.TempDir(), "--https", ln.Addr().String(),
		"--http", "", "--admin", "", "--echo", "", "--rung-port", "0", "--refine-ports", "0")
	if code == ExitOK {
		t.Fatalf("serve on a taken port exited 0; stdout %q", out)
	}
	if !strings.Contains(errOut, "address already in use") || !strings.Contains(errOut, ln.Addr().String()) {
		t.Errorf("exit %d, stderr %q: want the bind error with the address", code, errOut)
	}
}
