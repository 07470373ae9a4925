package deploy

import (
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mtuscope/mtuscope/server"
)

// TestContainerExposesServePorts: the image's EXPOSE names every port
// serve listens on from outside by default (the admin listener is loopback
// only), the probe target included.
func TestContainerExposesServePorts(t *testing.T) {
	b, err := os.ReadFile("container/Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^EXPOSE (.*)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("the Containerfile has no EXPOSE")
	}
	exposed := func(port int, proto string) bool {
		for _, f := range strings.Fields(string(m[1])) {
			ports, p, _ := strings.Cut(f, "/")
			lo, hi, ok := strings.Cut(ports, "-")
			if !ok {
				hi = lo
			}
			a, _ := strconv.Atoi(lo)
			z, _ := strconv.Atoi(hi)
			if p == proto && a <= port && port <= z {
				return true
			}
		}
		return false
	}
	port := func(addr string) int {
		_, p, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(p)
		return n
	}
	cfg := server.Defaults()
	want := map[string]int{"https": port(cfg.HTTPS), "http": port(cfg.HTTP), "probe target": port(cfg.Target)}
	n := len(cfg.RungMSS())
	want["first rung"], want["last rung"] = cfg.Rungs.BasePort, cfg.Rungs.BasePort+n-1
	want["first rung probe"], want["last rung probe"] = cfg.Rungs.DownBasePort, cfg.Rungs.DownBasePort+n-1
	want["refinement pool start"], want["refinement pool end"] = cfg.Rungs.RefineBasePort, cfg.Rungs.RefineBasePort+cfg.Rungs.RefinePorts-1
	for name, p := range want {
		if !exposed(p, "tcp") {
			t.Errorf("EXPOSE %s does not name the %s port %d/tcp", m[1], name, p)
		}
	}
	if p := port(cfg.Echo.Listen); !exposed(p, "udp") {
		t.Errorf("EXPOSE %s does not name the UDP echo %d/udp", m[1], p)
	}
}
