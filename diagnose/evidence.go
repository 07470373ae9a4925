package diagnose

// Evidence is everything observed about one path to one server address.
// A tool fills what it can measure and leaves the rest zero.
type Evidence struct {
	// Family is 4 or 6.
	Family int `json:"family"`
	// LocalMTU is the MTU of the client's route towards the server, bytes.
	LocalMTU int `json:"local_mtu"`
	// Connected is true when a TCP connection to the server opened.
	Connected bool `json:"connected"`
	// ConnectError says why not, when Connected is false.
	ConnectError string `json:"connect_error,omitempty"`
	// OfferedMSS is the MSS the client advertised on an unconstrained
	// connection and SettledMSS the one that connection settled on (both
	// without TCP options, as in the SYN); 0 when unknown.
	OfferedMSS int `json:"offered_mss,omitempty"`
	SettledMSS int `json:"settled_mss,omitempty"`
	// KernelPMTU is the path MTU the client's kernel learned for the server
	// (from ICMP) during the run; 0 when unknown.
	KernelPMTU int `json:"kernel_pmtu,omitempty"`

	// Segments are TLS handshakes at controlled packet sizes.
	Segments []SegmentTest `json:"segments,omitempty"`
	// Hellos are handshakes with ClientHellos of controlled sizes, every
	// segment small enough to pass.
	Hellos []HelloTest `json:"hellos,omitempty"`
	// Variants are handshakes with ClientHellos that differ from a
	// reference hello in one thing each (content, records, segments), at
	// a size the path carries.
	Variants []VariantTest `json:"variants,omitempty"`
	// Datagrams are UDP and ICMP tests.
	Datagrams []DatagramTest `json:"datagrams,omitempty"`
	// ICMPSignals are MTUs routers signalled (ICMP frag-needed, packet-too-big).
	ICMPSignals []ICMPSignal `json:"icmp_signals,omitempty"`
	// FlightBytes is the size of the server's first flight (ServerHello to
	// Finished or ServerHelloDone), bytes; 0 when unknown.
	FlightBytes int `json:"flight_bytes,omitempty"`
	// Server is what a cooperating mtuscope server observed, nil without one.
	Server *ServerView `json:"server,omitempty"`
	// Captured says the sizes are those some traffic happened to carry
	// (packet captures), not sizes chosen to test the path. SentInBracket
	// counts the packets the captures hold between the largest size that
	// got through and the smallest lost whose fate says nothing of their
	// size (lost together with a larger packet, or unknown when the
	// capture ended).
	Captured      bool `json:"captured,omitempty"`
	SentInBracket int  `json:"sent_in_bracket,omitempty"`
	// Incomplete is set when the run ended (its time limit) before the
	// size searches had their answers: sizes are lower bounds then.
	Incomplete bool `json:"incomplete,omitempty"`
	// Skipped names tests that could not run and why.
	Skipped []string `json:"skipped,omitempty"`
	// TooSlow, when set, says why the measurements cannot be read as the
	// path's: the page's client gave up on its smallest sizes although the
	// server saw their packets cross, or probe's size search ran out of
	// rounds retrying attempts the server answered too slowly (a busy
	// computer, not a lossy path).
	TooSlow string `json:"too_slow,omitempty"`
}

// SegmentTest is one TLS handshake that needed IP packets of a known size
// to cross the path in each direction.
type SegmentTest struct {
	// UpSize and DownSize are the largest IP packets, bytes, the handshake
	// needed through upstream and downstream (the actual size when it was
	// observed, otherwise the size the segment size allowed).
	UpSize   int     `json:"up_size"`
	DownSize int     `json:"down_size"`
	Up       Result  `json:"up"`
	Down     Result  `json:"down"`
	Outcome  Outcome `json:"outcome"`
	// Detail is a short description of an unusual outcome: the alert, the
	// first bytes of a non-TLS answer.
	Detail string `json:"detail,omitempty"`
	// HelloSegments is how many TCP segments the ClientHello needed (0:
	// unknown); a hello of several segments also tests whether the path
	// can read a split hello.
	HelloSegments int `json:"hello_segments,omitempty"`
}

// HelloTest is one handshake with a ClientHello of a given size, carried in
// segments no larger than PacketSize.
type HelloTest struct {
	HelloBytes int     `json:"hello_bytes"`
	PacketSize int     `json:"packet_size"`
	Segments   int     `json:"segments"`
	Outcome    Outcome `json:"outcome"`
}

// DatagramMethod names how a datagram test was sent.
type DatagramMethod string

// Datagram methods.
const (
	// MethodUDP is a datagram to a closed port: the port-unreachable
	// answer proves arrival.
	MethodUDP DatagramMethod = "udp"
	// MethodICMPEcho is an ICMP (or ICMPv6) echo request.
	MethodICMPEcho DatagramMethod = "icmp_echo"
	// MethodUDPEcho is a datagram through mtuscope serve's UDP echo.
	MethodUDPEcho DatagramMethod = "udp_echo"
)

// DatagramAnswer names what came back for a datagram test.
type DatagramAnswer string

// Datagram answers.
const (
	AnswerPortUnreachable DatagramAnswer = "port_unreachable" // the datagram arrived at the closed port
	AnswerFragNeeded      DatagramAnswer = "frag_needed"      // a router reported a smaller MTU (ICMP frag-needed, ICMPv6 packet-too-big)
	AnswerICMPError       DatagramAnswer = "icmp_error"       // another ICMP error came back
	AnswerLocalEMSGSIZE   DatagramAnswer = "local_emsgsize"   // this host refused to send it (larger than its route MTU)
	AnswerEchoReply       DatagramAnswer = "echo_reply"       // the echo came back (both ways)
	AnswerRequestArrived  DatagramAnswer = "request_arrived"  // the server's echo got it, its same-size answer was lost
	AnswerNone            DatagramAnswer = "none"             // silence
	// AnswerNoneUnverified is silence that may be the server's ICMP rate
	// limit rather than a loss.
	AnswerNoneUnverified DatagramAnswer = "none_unverified"
	AnswerError          DatagramAnswer = "error" // the test could not run
)

// DatagramTest is one UDP or ICMP test.
type DatagramTest struct {
	Method DatagramMethod `json:"method"`
	// Size is the IP packet size, bytes, before any fragmentation.
	Size int `json:"size"`
	// DF says the packet carried Don't Fragment; otherwise it may have been
	// fragmented on the way (Fragmented says whether it was, from the start).
	DF         bool `json:"df"`
	Fragmented bool `json:"fragmented"`
	// Result is Passed when the answer came back, Failed on silence.
	Result Result `json:"result"`
	// Answer names what came back.
	Answer DatagramAnswer `json:"answer"`
	// Proves is the direction a failure of this test implicates: upstream
	// for UDP (its answer is small), unknown for an echo round trip.
	Proves Direction `json:"proves"`
}

// ICMPSignal is one path MTU a router reported.
type ICMPSignal struct {
	From string `json:"from"`
	MTU  int    `json:"mtu"`
}

// ServerView is what a cooperating server reports about one connection.
type ServerView struct {
	SYNMSS        int    `json:"syn_mss"`
	HelloBytes    int    `json:"hello_bytes"`
	HelloSHA256   string `json:"hello_sha256"`
	SentHelloSize int    `json:"sent_hello_bytes"`
	SentSHA256    string `json:"sent_hello_sha256"`
}
