package probe

import (
	"bufio"
	"bytes"
	"net/http"
	"testing"
)

// TestExactGetSize: the upstream test's request is exactly the payload
// asked for (every upstream size rests on it), and a well-formed request
// for the service's path.
func TestExactGetSize(t *testing.T) {
	for _, total := range []int{0, 80, 81, 524, 1000, 1448, 1460, 8948} {
		req := exactGet("u=1", total)
		if total >= 80 && len(req) != total {
			t.Errorf("total %d: request of %d bytes", total, len(req))
		}
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(req)))
		if err != nil {
			t.Fatalf("total %d: %v", total, err)
		}
		if r.URL.Path != "/t/exact" || r.URL.Query().Get("u") != "1" || r.URL.Query().Has("size") {
			t.Errorf("total %d: %s", total, r.URL)
		}
	}
}
