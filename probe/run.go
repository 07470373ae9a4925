package probe

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/packet"
	"github.com/mtuscope/mtuscope/tlswire"
)

// AddressCheck is the TCP connect test of one resolved address.
type AddressCheck struct {
	Address string        `json:"address"`
	Connect time.Duration `json:"-"`
	RTT     time.Duration `json:"-"`
	// SndMSS is the payload per segment the connection settled on.
	SndMSS int    `json:"snd_mss,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Report is everything a run measured.
type Report struct {
	Target     string
	Address    string // host:port probed, "" when nothing resolved
	Family     int
	ServerName string
	Addresses  []AddressCheck
	RTT        time.Duration
	// HandshakeTimeout is the per-attempt timeout: derived from the RTT,
	// then as long as slow rounds made it.
	HandshakeTimeout time.Duration
	Handshakes       []Handshake
	UDP              []UDPTest
	Echo             []EchoTest
	// AssistedEcho are the datagrams sent through a cooperating server's
	// UDP echo; none without one.
	AssistedEcho []AssistedEcho
	// Variants are the attempts of the ClientHello variants (one change
	// each from a reference hello).
	Variants    []VariantAttempt
	Evidence    diagnose.Evidence
	Connections int
	Elapsed     time.Duration
}

// UDPTest is one UDP probe to a closed port.
type UDPTest struct {
	Size     int                     `json:"size"`
	DF       bool                    `json:"df"`
	Port     int                     `json:"port"`
	Answer   diagnose.DatagramAnswer `json:"answer"`
	Copies   int                     `json:"copies"`
	MTU      int                     `json:"mtu,omitempty"`
	From     string                  `json:"from,omitempty"`
	Error    string                  `json:"error,omitempty"`
	Duration time.Duration           `json:"-"`
}

// EchoTest is one ICMP echo request and whether its reply came.
type EchoTest struct {
	Size    int  `json:"size"`
	DF      bool `json:"df"`
	Replied bool `json:"replied"`
	Round   int  `json:"round"`
	// Retried marks an echo that proved nothing (a silent fragmented pair
	// sent again, or a confirmation whose small echo was lost too): it is
	// out of the evidence.
	Retried  bool          `json:"retried,omitempty"`
	Duration time.Duration `json:"-"`
}

// ErrResolve reports a target name that does not resolve.
var ErrResolve = errors.New("cannot resolve")

// Floors of the MSS ladder: the MSS of a 576-byte IPv4 packet and of a
// 1280-byte IPv6 packet (the IPv6 minimum MTU), which every path must carry.
const (
	floorMSS4 = 536
	floorMSS6 = 1220
	// maxProbeMTU caps the ladder on jumbo-frame and loopback routes.
	maxProbeMTU = 9000
	udpPort     = 33457 // a traceroute-range port, expected closed
)

// plateaus are common path MTUs (RFC 1191's table and today's tunnels:
// PPPoE 1492, GRE 1476, VXLAN 1450, WireGuard 1420, IPv6 minimum 1280).
var plateaus = []int{1492, 1480, 1476, 1460, 1450, 1440, 1420, 1400, 1380, 1360, 1340, 1300, 1280, 1006}

// sweepSizes are the ClientHello record sizes of the sweep: small ones,
// Go's default hello with ML-KEM (about 1.5 KB), what post-quantum browsers
// send (1.7-1.8 KB), and larger ones up to 4 KB.
var sweepSizes = []int{300, 600, 1000, 1250, 1400, 1512, 1600, 1700, 1750, 1800, 2500, 4000}

type runner struct {
	cfg            Config
	log            *slog.Logger
	addr           netip.Addr
	port           int
	family         int
	serverName     string
	connectTimeout time.Duration
	hsTimeout      time.Duration
	inflight       chan struct{}
	budget         atomic.Int32
	// maxConns is the connection budget, MaxConnections when 0; the
	// variants run on a runner of their own (variants) with theirs.
	maxConns int32
	variants *runner
	start    time.Time

	mu         sync.Mutex
	handshakes []Handshake
	// flights holds, per hello kind (the baseline counting as small), the
	// size of a complete first flight the server sent; delivered the
	// largest packet seen to arrive from the server. With them, an attempt
	// the server answered with nothing at all can be told from a loss
	// (silentServer).
	flights   map[string]int
	delivered int
}

func (r *runner) take() bool {
	limit := r.maxConns
	if limit == 0 {
		limit = MaxConnections
	}
	return r.budget.Add(1) <= limit
}

// connections counts the connections opened, the variants' included.
func (r *runner) connections() int {
	n := int(min(r.budget.Load(), MaxConnections))
	if v := r.variants; v != nil {
		n += int(min(v.budget.Load(), v.maxConns))
	}
	return n
}

// variantRunner returns a runner for the variants: the same target and
// bounds on connections in flight, a connection budget of its own
// (MaxVariantConnections), so that the size tests keep all of theirs.
func (r *runner) variantRunner() *runner {
	return &runner{cfg: r.cfg, log: r.log, addr: r.addr, port: r.port, family: r.family, serverName: r.serverName,
		connectTimeout: r.connectTimeout, hsTimeout: r.hsTimeout, inflight: r.inflight, start: r.start,
		maxConns: MaxVariantConnections}
}

func (r *runner) progress(phase string, round int) {
	if r.cfg.Progress != nil {
		r.cfg.Progress(Progress{Phase: phase, Round: round, Connections: r.connections(), Elapsed: r.now().Sub(r.start)})
	}
}

func (r *runner) keep(h Handshake) Handshake {
	r.mu.Lock()
	r.handshakes = append(r.handshakes, h)
	r.mu.Unlock()
	r.learn(h)
	r.log.Debug("handshake", "kind", h.Kind, "mss", h.MSS, "hello", h.HelloBytes, "outcome", h.Outcome,
		"up", h.Up, "down", h.Down, "snd_mss", h.SndMSS, "rcv_mss", h.RcvMSS, "unacked", h.Unacked, "ooo", h.OOOPackets, "detail", h.Detail)
	return h
}

// learn notes what a finished attempt shows of the server's flights and
// of the packets that arrive from it (silentServer reads them). runRound
// calls it as each attempt lands, so that a failure of the same round,
// which lands at its timeout, is judged with the passes that came first.
func (r *runner) learn(h Handshake) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h.Outcome == diagnose.Completed && h.FlightBytes > 0 && h.Kind != KindDownload {
		if r.flights == nil {
			r.flights = map[string]int{}
		}
		r.flights[flightKind(h.Kind)] = h.FlightBytes
	}
	if h.Down == diagnose.Passed {
		r.delivered = max(r.delivered, h.DownSize)
	}
}

// Run probes the target. It returns an error only when the probe cannot
// run at all (the name does not resolve); everything
// the network does wrong is evidence in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout-cfg.TimeNow().Sub(cfg.Start))
	defer cancel()
	r := &runner{cfg: cfg, log: cfg.Logger, port: cfg.Target.Port, inflight: make(chan struct{}, MaxInFlight), start: cfg.Start}
	rep := &Report{Target: cfg.Target.Input}
	assistant := r.detect(ctx)

	// 1. TCP connect to each address: RTT and settled MSS.
	if err := r.connect(ctx, rep); err != nil {
		return nil, err
	}
	defer func() {
		rep.Handshakes = r.handshakes
		rep.Connections = r.connections()
		rep.Elapsed = r.now().Sub(r.start)
	}()
	ev := &rep.Evidence
	if ev.ConnectError != "" {
		return rep, nil
	}
	if r.cfg.Portable {
		r.runPortable(ctx, rep, assistant)
		r.finish(ctx, rep, assistant)
		return rep, nil
	}
	// 2. UDP tests, running alongside everything that follows: they go
	// first so that a router's rate-limited ICMP answers them before the
	// ladders' large segments ask for more. Then a baseline handshake at
	// the floor: does TLS work at all?
	r.progress("baseline", 0)
	var udp []UDPTest
	udpDone := make(chan struct{})
	go func() {
		defer close(udpDone)
		udp = r.udpTests(ctx, ev.LocalMTU, rep.RTT)
	}()
	floor, hi := r.ladderBounds(ev.LocalMTU)
	small := outOfWindow(tlswire.HelloSpec{ServerName: r.serverName, ALPN: []string{"http/1.1"}})
	base := r.baseline(ctx, rep, floor, small)
	if base.Outcome == diagnose.Completed && assistant() != nil {
		r.assist(ctx, base, ev)
	}
	// 3. The ClientHello variants, alongside the size tests (instead of
	// them when even the baseline failed): what the path does with a
	// hello's content, at a size it carries.
	// They start once the ladders' first round, the largest, is done, so
	// as not to slow it (a slow round reads as congestion), with the
	// timeout that round left.
	var variants []VariantAttempt
	variantsDone := make(chan struct{})
	startVariants := sync.OnceFunc(func() {
		if base.Outcome == diagnose.ConnectFailed || ctx.Err() != nil {
			close(variantsDone)
			return
		}
		r.variants = r.variantRunner() // with the timeout the ladders left: they change r.hsTimeout meanwhile
		go func() {
			defer close(variantsDone)
			v := r.variants
			variants = v.variantTests(ctx, v.variantMSS(hi), v.hsTimeout, rep.RTT, small.ALPN, base.Outcome == diagnose.Completed)
		}()
	})
	// 4. Ladders and sweep (and ICMP echo), when TLS works at all.
	if base.Outcome == diagnose.Completed {
		r.sizeTests(ctx, rep, floor, hi, small, startVariants)
	} else {
		r.progress("variants", 0)
	}
	startVariants()
	<-variantsDone
	rep.Variants = variants
	<-udpDone
	rep.UDP = udp
	// 5. What needs the others done: the server's echo, the kernel's
	// path MTU afterwards, the evidence.
	if assistant() != nil && ctx.Err() == nil {
		r.progress("udp echo", 0)
		rep.AssistedEcho = assistedEchoes(ctx, r.cfg.Assistant)
	}
	if mtu, err := routeMTU(r.addr); err == nil && mtu < ev.LocalMTU && (ev.KernelPMTU == 0 || mtu < ev.KernelPMTU) {
		ev.KernelPMTU = mtu
	}
	r.fillEvidence(rep)
	if ctx.Err() != nil {
		ev.Incomplete = true
		ev.Skipped = append(ev.Skipped, fmt.Sprintf("the run hit its %s timeout before finishing", cfg.Timeout))
	}
	return rep, nil
}

func (r *runner) now() time.Time { return r.cfg.TimeNow() }

// detect starts server detection alongside the first tests and returns
// the function that waits for its answer; only the run's own goroutine
// may call it.
func (r *runner) detect(ctx context.Context) func() Assistant {
	detected := make(chan Assistant, 1)
	if r.cfg.Assistant == nil && r.cfg.Detect != nil {
		go func() { detected <- r.cfg.Detect(ctx) }()
	} else {
		detected <- r.cfg.Assistant
	}
	waited := false
	return func() Assistant {
		if !waited {
			waited = true
			r.cfg.Assistant = <-detected
		}
		return r.cfg.Assistant
	}
}

// connect resolves the target, connects to each address and picks the
// one the tests use (the first that connected), with its family, RTT,
// MSS and the local MTU towards it. A failed connect is evidence
// (Evidence.ConnectError); an error means the run cannot start.
func (r *runner) connect(ctx context.Context, rep *Report) error {
	cfg := r.cfg
	r.progress("resolving", 0)
	addrs, err := resolve(ctx, cfg.Target, cfg.Family)
	if err != nil {
		return err
	}
	r.serverName = cfg.ServerName
	if r.serverName == "" && !cfg.Target.Addr.IsValid() {
		r.serverName = cfg.Target.Host
	}
	rep.ServerName = r.serverName

	r.progress("connecting", 0)
	r.connectTimeout = min(5*time.Second, cfg.Start.Add(cfg.Timeout).Sub(r.now()))
	checks := r.connectAll(ctx, addrs)
	rep.Addresses = checks
	chosen := -1
	for i, c := range checks {
		if c.Error == "" {
			chosen = i
			break
		}
	}
	if chosen < 0 {
		chosen = 0
	}
	r.addr = addrs[chosen]
	r.family = 4
	if r.addr.Is6() {
		r.family = 6
	}
	rep.Address = netip.AddrPortFrom(r.addr, uint16(r.port)).String()
	rep.Family = r.family
	ev := &rep.Evidence
	ev.Family = r.family
	// The local MTU is the interface's; a smaller route MTU is a path MTU
	// the kernel already learned from ICMP (before this run, or from
	// another program). Above maxProbeMTU (loopback, jumbo frames) only
	// that much is probed, and that much counts as the full local MTU.
	route, rerr := routeMTU(r.addr)
	if mtu, err := linkMTU(r.addr); err == nil {
		ev.LocalMTU = min(mtu, maxProbeMTU)
	} else if rerr == nil {
		ev.LocalMTU = min(route, maxProbeMTU)
	}
	if rerr == nil && route < ev.LocalMTU {
		ev.KernelPMTU = route
	}
	if checks[chosen].Error != "" {
		ev.ConnectError = checks[chosen].Error
		return nil
	}
	ev.Connected = true
	rep.RTT = checks[chosen].RTT
	ev.OfferedMSS = ev.LocalMTU - diagnose.IPHeader(r.family)
	ev.SettledMSS = checks[chosen].SndMSS
	// Timeouts derive from the measured RTT, with a floor that leaves room
	// for two retransmissions at the kernel's minimum RTO (200 ms).
	r.hsTimeout = max(800*time.Millisecond, 600*time.Millisecond+4*rep.RTT)
	r.connectTimeout = max(2*time.Second, 10*rep.RTT)
	return nil
}

// outOfWindow pads a hello that would be 256 to 511 bytes long (the
// record, the handshake message or its body: reports differ on which
// length such devices read) to a body of 512 bytes, a 521-byte record, as
// RFC 7685's padding is for: devices that mishandle that window would
// otherwise fail the baseline, which is about sizes (the variants test the
// window itself). It still fits one segment at IPv4's floor MSS.
func outOfWindow(spec tlswire.HelloSpec) tlswire.HelloSpec {
	if n, err := tlswire.NaturalSize(spec); err == nil && n >= 256+4 && n <= 511+tlswire.RecordHeaderLen {
		spec.Size = 512 + 4 + tlswire.RecordHeaderLen
	}
	return spec
}

// ladderBounds returns the MSS range of the ladders: from the floor every
// path must carry to the local MTU (at most maxProbeMTU).
func (r *runner) ladderBounds(localMTU int) (floor, hi int) {
	floor = floorMSS4
	if r.family == 6 {
		floor = floorMSS6
	}
	hi = min(localMTU, maxProbeMTU) - diagnose.IPHeader(r.family)
	return floor, max(hi, floor)
}

// baseline runs the handshake at the floor MSS (again once when its hello
// or its connect failed) and sets the handshake timeout from it. When
// nothing at all came back from the server in time, not even to the
// smallest packets, the server (or this host) may merely be busy: that
// attempt proves nothing and runs again, twice at most, each time with
// twice the wait, before the silence counts.
func (r *runner) baseline(ctx context.Context, rep *Report, floor int, small tlswire.HelloSpec) Handshake {
	base := r.handshake(ctx, KindBaseline, floor, small)
	if base.Outcome == diagnose.StalledClientHello || base.Outcome == diagnose.ConnectFailed {
		r.keep(base)
		base = r.handshake(ctx, KindBaseline, floor, small)
	}
	for tries := 0; tries < 2 && ctx.Err() == nil && nothingBack(base); tries++ {
		base.Retried = true
		r.keep(base)
		r.hsTimeout = min(2*r.hsTimeout, maxHandshakeTimeout)
		base = r.handshake(ctx, KindBaseline, floor, small)
	}
	base = r.keep(base)
	// The RTT is the smallest connect time seen (a connect that needed a
	// SYN retransmission overstates it); the handshake timeout leaves room
	// for a slow server too.
	if base.Connect > 0 && base.Connect < rep.RTT {
		rep.RTT = base.Connect
	}
	r.hsTimeout = max(r.hsTimeout, 800*time.Millisecond, 600*time.Millisecond+4*rep.RTT) // as retries left it
	if base.Outcome == diagnose.Completed {
		r.hsTimeout = max(r.hsTimeout, r.hsTimeout/2+3*(base.Duration-base.Connect))
	}
	rep.HandshakeTimeout = r.hsTimeout
	return base
}

// nothingBack says an attempt's hello arrived (the server acknowledged it)
// but nothing of the server's answer came back in time, in order or
// beyond a gap: a silent server, not a packet size.
func nothingBack(h Handshake) bool {
	return h.Outcome == diagnose.StalledServerFlight && h.FlightBytes == 0 && h.OOOPackets == 0 ||
		h.Outcome == diagnose.Timeout && h.Detail != "run timeout"
}

// sizeTests runs the ladders and the sweep, with the ICMP echo tests
// alongside; afterFirst is called when the ladders' first round is done.
func (r *runner) sizeTests(ctx context.Context, rep *Report, floor, hi int, small tlswire.HelloSpec, afterFirst func()) {
	ev := &rep.Evidence
	var echo []EchoTest
	var skipped string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if r.cfg.SkipICMP {
			skipped = "ICMP echo tests (--no-icmp)"
			return
		}
		echo, skipped = r.echoTests(ctx, ev.LocalMTU)
	}()
	if why := r.ladders(ctx, floor, hi, small, afterFirst); why != "" {
		ev.TooSlow = why
	}
	rep.HandshakeTimeout = max(rep.HandshakeTimeout, r.hsTimeout) // as congestion left it
	wg.Wait()
	rep.Echo = echo
	if skipped != "" {
		ev.Skipped = append(ev.Skipped, skipped)
	}
}

func resolve(ctx context.Context, t Target, family int) ([]netip.Addr, error) {
	if t.Addr.IsValid() {
		if family == 4 && !t.Addr.Is4() || family == 6 && !t.Addr.Is6() {
			return nil, fmt.Errorf("%s is not an IPv%d address", t.Addr, family)
		}
		return []netip.Addr{t.Addr}, nil
	}
	network := "ip"
	if family != 0 {
		network = fmt.Sprintf("ip%d", family)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(rctx, network, t.Host)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrResolve, t.Host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w %q: no IPv%d address", ErrResolve, t.Host, family)
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	return addrs[:min(len(addrs), 4)], nil
}

// connectAll opens one plain TCP connection to each address.
func (r *runner) connectAll(ctx context.Context, addrs []netip.Addr) []AddressCheck {
	out := make([]AddressCheck, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := AddressCheck{Address: netip.AddrPortFrom(a, uint16(r.port)).String()}
			if !r.take() {
				c.Error = errBudget.Error()
				out[i] = c
				return
			}
			start := r.now()
			conn, err := r.cfg.Dial(ctx, &net.Dialer{Timeout: r.connectTimeout}, "tcp", c.Address)
			if err != nil {
				c.Error = err.Error()
				out[i] = c
				return
			}
			c.Connect = r.now().Sub(start)
			c.RTT = c.Connect
			if info, err := r.tcpInfo(conn); err == nil {
				// The kernel's RTT sample is right even when the SYN had to
				// be sent again (timestamps), the wall time is not.
				if info.RTT > 0 && info.RTT < c.RTT {
					c.RTT = info.RTT
				}
				c.SndMSS = info.SndMSS
				if info.Timestamps {
					c.SndMSS += packet.TCPTimestampsLen // the MSS as in the SYN, options not counted
				}
			}
			conn.Close()
			out[i] = c
		}()
	}
	wg.Wait()
	return out
}

// assist asks the cooperating server what it saw of the baseline hello.
func (r *runner) assist(ctx context.Context, base Handshake, ev *diagnose.Evidence) {
	sid, err := hex.DecodeString(base.SessionID)
	if err != nil {
		return
	}
	obs, err := r.cfg.Assistant.Connection(ctx, sid)
	if err != nil {
		ev.Skipped = append(ev.Skipped, "server-assisted comparison: "+err.Error())
		return
	}
	ev.Server = &diagnose.ServerView{SYNMSS: obs.SYNMSS, HelloBytes: obs.HelloBytes, HelloSHA256: hex.EncodeToString(obs.HelloSHA256[:]),
		SentHelloSize: base.HelloBytes, SentSHA256: base.helloSHA}
}
