package testnet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Addresses. Client network i uses 198.51.100.16i/28 and 2001:db8:100:i::/64
// for its LAN, 192.0.2.4i/30 and 2001:db8:200:i::/64 for its middle link; the
// server LAN is 203.0.113.0/24 and 2001:db8:300::/64. Only documentation
// prefixes, so nothing here can ever reach a real host.
const maxNetworks = 16

var (
	ServerV4 = netip.MustParseAddr("203.0.113.10")
	ServerV6 = netip.MustParseAddr("2001:db8:300::10")
)

func clientLAN(i int) (r1v4, hostv4, r1v6, hostv6 string) {
	return fmt.Sprintf("198.51.100.%d", 16*i+1), fmt.Sprintf("198.51.100.%d", 16*i+2),
		fmt.Sprintf("2001:db8:100:%x::1", i), fmt.Sprintf("2001:db8:100:%x::2", i)
}

func midLink(i int) (r1v4, r2v4, r1v6, r2v6 string) {
	return fmt.Sprintf("192.0.2.%d", 4*i+1), fmt.Sprintf("192.0.2.%d", 4*i+2),
		fmt.Sprintf("2001:db8:200:%x::1", i), fmt.Sprintf("2001:db8:200:%x::2", i)
}

func serverLAN(i int) (r2v4, r2v6 string) {
	return fmt.Sprintf("203.0.113.%d", 64+i), fmt.Sprintf("2001:db8:300::%x", 0x40+i)
}

// Net is one built topology: per client network i,
//
//	Clients[i] --eth0 / lan-- R1[i] --mid (MidMTU) mid-- R2[i] --srv / n<i>-- Server
//
// where the server's ports n0, n1, ... are enslaved to its bridge br0.
type Net struct {
	Scenario Scenario
	Server   *Host
	Client   *Host // Clients[0]
	Clients  []*Host
	R1, R2   []*Host
	// NAT is the office router every client network converges on when
	// the scenario has Office set (then R2 holds only it), nil otherwise.
	NAT *Host
	// Middleboxes holds, per client network, the device on its r1 when
	// the network's Faults name one (Faults.Device), nil otherwise.
	Middleboxes []*Middlebox

	mu     sync.Mutex
	procs  []*Proc
	closed bool
}

// Hosts returns every namespace of the net: clients, routers, server.
func (n *Net) Hosts() []*Host {
	hs := append([]*Host(nil), n.Clients...)
	hs = append(hs, n.R1...)
	hs = append(hs, n.R2...)
	return append(hs, n.Server)
}

// Build creates the namespaces, links, addresses, routes and nft rules of sc.
// Close undoes it; on error Build has already cleaned up what it made.
func Build(ctx context.Context, sc Scenario) (n *Net, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("testnet: network namespaces need root")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("testnet: %s not found (install iproute2 and nftables)", tool)
		}
	}
	if len(sc.Networks) == 0 {
		sc.Networks = []Faults{{}}
	}
	if len(sc.Networks) > maxNetworks {
		return nil, fmt.Errorf("testnet: %d client networks, at most %d", len(sc.Networks), maxNetworks)
	}
	if err := processStart(); err != nil {
		return nil, err
	}
	prefix := newNetName()
	n = &Net{Scenario: sc}
	n.Server = &Host{Name: prefix + "srv", net: n, V4: ServerV4, V6: ServerV6}
	if sc.Office {
		n.NAT = &Host{Name: prefix + "nat", net: n, V4: OfficeV4, V6: OfficeV6}
	}
	for i := range sc.Networks {
		_, c4, _, c6 := clientLAN(i)
		n.Clients = append(n.Clients, &Host{Name: fmt.Sprintf("%sc%d", prefix, i), net: n,
			V4: netip.MustParseAddr(c4), V6: netip.MustParseAddr(c6)})
		r1v4, _, r1v6, _ := clientLAN(i)
		n.R1 = append(n.R1, &Host{Name: fmt.Sprintf("%sr1n%d", prefix, i), net: n,
			V4: netip.MustParseAddr(r1v4), V6: netip.MustParseAddr(r1v6)})
		if sc.Office {
			continue
		}
		r2v4, r2v6 := serverLAN(i)
		n.R2 = append(n.R2, &Host{Name: fmt.Sprintf("%sr2n%d", prefix, i), net: n,
			V4: netip.MustParseAddr(r2v4), V6: netip.MustParseAddr(r2v6)})
	}
	if sc.Office {
		n.R2 = []*Host{n.NAT}
	}
	n.Client = n.Clients[0]
	defer func() {
		if err != nil {
			n.Close()
			n = nil
		}
	}()

	var add []string
	for _, h := range n.Hosts() {
		add = append(add, "netns add "+h.Name)
	}
	if err := ipBatch(ctx, "", add); err != nil {
		return n, err
	}
	for _, h := range n.Hosts() {
		if err := h.Do(func() error { return h.sysctls() }); err != nil {
			return n, err
		}
		if err := writeEtc(h.Name); err != nil {
			return n, err
		}
	}
	// Links first (each created from one end, straight into both namespaces),
	// then each namespace's addresses and routes.
	if err := ipBatch(ctx, n.Server.Name, []string{"link add br0 type bridge", "link set br0 up"}); err != nil {
		return n, err
	}
	if sc.Office {
		if err := ipBatch(ctx, n.NAT.Name, []string{"link add srv type veth peer name n0 netns " + n.Server.Name}); err != nil {
			return n, err
		}
	}
	for i := range sc.Networks {
		c, r1 := n.Clients[i], n.R1[i]
		steps := []struct {
			ns    string
			lines []string
		}{
			{c.Name, []string{"link add eth0 type veth peer name lan netns " + r1.Name}},
		}
		if sc.Office {
			steps = append(steps, struct {
				ns    string
				lines []string
			}{r1.Name, []string{fmt.Sprintf("link add mid type veth peer name mid%d netns %s", i, n.NAT.Name)}})
		} else {
			r2 := n.R2[i]
			steps = append(steps, []struct {
				ns    string
				lines []string
			}{
				{r1.Name, []string{"link add mid type veth peer name mid netns " + r2.Name}},
				{r2.Name, []string{fmt.Sprintf("link add srv type veth peer name n%d netns %s", i, n.Server.Name)}},
			}...)
		}
		for _, s := range steps {
			if err := ipBatch(ctx, s.ns, s.lines); err != nil {
				return n, err
			}
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 0)
	var emu sync.Mutex
	for ns, lines := range n.config() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ipBatch(ctx, ns, lines); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		}()
	}
	if sc.Office {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.NAT.nft(ctx, officeNAT(sc.Networks)); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		}()
	}
	for i, f := range sc.Networks {
		routers := []*Host{n.R1[i]}
		if !sc.Office {
			routers = append(routers, n.R2[i])
		}
		for _, r := range routers {
			rules := nftRules(f, r == n.R1[i])
			if rules == "" {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := r.nft(ctx, rules); err != nil {
					emu.Lock()
					errs = append(errs, err)
					emu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return n, err
	}
	if err := n.waitLinks(ctx); err != nil {
		return n, err
	}
	return n, n.startDevices(ctx)
}

// waitLinks waits until every link is operational. The kernel attaches a
// link's real queueing discipline only after its carrier event, which it may
// delay by up to a second; until then the "noop" discipline drops every
// packet, and a test's first SYN would vanish.
func (n *Net) waitLinks(ctx context.Context) error {
	for _, h := range n.Hosts() {
		for {
			out, err := exec.CommandContext(ctx, "ip", "-n", h.Name, "-o", "link", "show", "up").Output()
			if err != nil {
				return fmt.Errorf("testnet: ip -n %s link: %w", h.Name, err)
			}
			ready := true
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if !strings.Contains(line, "LOOPBACK") && (strings.Contains(line, "qdisc noop") || !strings.Contains(line, "state UP")) {
					ready = false
				}
			}
			if ready {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("testnet: links of %s not up: %s", h.Name, out)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// etcNetns holds per-namespace files that "ip netns exec" mounts over /etc.
const etcNetns = "/etc/netns"

// hostsFile names the test server, so programs run in a namespace (curl,
// Chromium, the mtuscope binary) resolve ServerName without any DNS.
var hostsFile = fmt.Sprintf("127.0.0.1 localhost\n::1 localhost\n%s %s\n%s %s\n",
	ServerV4, ServerName, ServerV6, ServerName)

// resolvConf points name lookups in a namespace at its own loopback, where
// nothing listens: other names fail at once, and no query ever heads for
// the machine's real resolver.
const resolvConf = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"

// writeEtc writes the namespace's hosts and resolv.conf, which "ip netns
// exec" mounts over /etc's.
func writeEtc(ns string) error {
	dir := filepath.Join(etcNetns, ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("testnet: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(hostsFile), 0o644); err != nil {
		return fmt.Errorf("testnet: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(resolvConf), 0o644)
}

// config returns, per namespace, the ip batch lines that set addresses,
// MTUs, link state and routes.
func (n *Net) config() map[string][]string {
	cfg := map[string][]string{}
	srv := []string{
		"addr add 203.0.113.10/24 dev br0",
		"addr add 2001:db8:300::10/64 dev br0 nodad",
	}
	if n.Scenario.Office {
		cfg[n.Server.Name] = append([]string{"link set lo up"}, append(srv, "link set n0 master br0 up")...)
		n.officeConfig(cfg)
		return cfg
	}
	for i, f := range n.Scenario.Networks {
		c, r1, r2 := n.Clients[i], n.R1[i], n.R2[i]
		midR1v4, midR2v4, midR1v6, midR2v6 := midLink(i)
		upR2v4, upR2v6 := serverLAN(i)
		mtu := f.mtu()
		cfg[c.Name], cfg[r1.Name] = clientAndR1(i, mtu, midR2v4, midR2v6)
		cfg[r2.Name] = []string{
			"link set lo up", "link set srv up",
			fmt.Sprintf("link set mid mtu %d up", mtu),
			"addr add " + midR2v4 + "/30 dev mid",
			"addr add " + midR2v6 + "/64 dev mid nodad",
			"addr add " + upR2v4 + "/24 dev srv",
			"addr add " + upR2v6 + "/64 dev srv nodad",
			fmt.Sprintf("route add 198.51.100.%d/28 via %s", 16*i, midR1v4),
			fmt.Sprintf("route add 2001:db8:100:%x::/64 via %s", i, midR1v6),
		}
		cfg[c.Name] = append(cfg[c.Name], f.gsoLines("eth0", f.UpLimit)...)
		srv = append(srv, f.gsoLines(fmt.Sprintf("n%d", i), f.DownLimit)...)
		srv = append(srv,
			fmt.Sprintf("link set n%d master br0 up", i),
			fmt.Sprintf("route add 198.51.100.%d/28 via %s", 16*i, upR2v4),
			fmt.Sprintf("route add 192.0.2.%d/30 via %s", 4*i, upR2v4),
			fmt.Sprintf("route add 2001:db8:100:%x::/64 via %s", i, upR2v6),
			fmt.Sprintf("route add 2001:db8:200:%x::/64 via %s", i, upR2v6),
		)
	}
	cfg[n.Server.Name] = append([]string{"link set lo up"}, srv...)
	return cfg
}

// Close stops every process started in the net, then deletes its namespaces.
// It is safe to call more than once.
func (n *Net) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	procs := n.procs
	n.mu.Unlock()
	for _, p := range procs {
		p.Stop()
	}
	var errs []error
	existing, _ := listNamespaces()
	for _, h := range n.Hosts() {
		os.RemoveAll(filepath.Join(etcNetns, h.Name))
		for _, ns := range existing {
			if ns == h.Name {
				errs = append(errs, deleteNamespace(ns))
			}
		}
	}
	return errors.Join(errs...)
}

// FlushPMTU forgets the path MTUs learned from ICMP, on clients and server.
func (n *Net) FlushPMTU(ctx context.Context) error {
	var errs []error
	for _, h := range append([]*Host{n.Server}, n.Clients...) {
		for _, fam := range []string{"-4", "-6"} {
			if out, err := exec.CommandContext(ctx, "ip", "-n", h.Name, fam, "route", "flush", "cache").CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("ip -n %s %s route flush cache: %v: %s", h.Name, fam, err, out))
			}
		}
	}
	return errors.Join(errs...)
}

// String names the net by its scenario and namespace prefix.
func (n *Net) String() string {
	return fmt.Sprintf("%s (%s)", n.Scenario, strings.TrimSuffix(n.Server.Name, "srv"))
}

// clientAndR1 returns the commands that configure client network i's
// client and its router r1, whose middle link (MTU mtu) leads to the next
// hop at nextV4 and nextV6: r2 in the per-network topology, the NAT router
// in the office.
func clientAndR1(i, mtu int, nextV4, nextV6 string) (client, r1 []string) {
	lanR1v4, lanCv4, lanR1v6, lanCv6 := clientLAN(i)
	midR1v4, _, midR1v6, _ := midLink(i)
	client = []string{
		"link set lo up", "link set eth0 up",
		"addr add " + lanCv4 + "/28 dev eth0",
		"addr add " + lanCv6 + "/64 dev eth0 nodad",
		"route add default via " + lanR1v4,
		"route add ::/0 via " + lanR1v6,
	}
	r1 = []string{
		"link set lo up", "link set lan up",
		fmt.Sprintf("link set mid mtu %d up", mtu),
		"addr add " + lanR1v4 + "/28 dev lan",
		"addr add " + lanR1v6 + "/64 dev lan nodad",
		"addr add " + midR1v4 + "/30 dev mid",
		"addr add " + midR1v6 + "/64 dev mid nodad",
		"route add default via " + nextV4,
		"route add ::/0 via " + nextV6,
	}
	return client, r1
}
