package analyze

import (
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
)

// TestClosedFlowFinished: a connection reset by its client is finished a
// second after it closed (its state then serves a later flow), and a new
// connection on the same four-tuple that took over its handle and its
// state within that second is not finished with it: every one of its
// packets is recorded, and its handshake completes.
func TestClosedFlowFinished(t *testing.T) {
	b := newPcap(t)
	c, s := testClient, testServer
	ms := time.Millisecond
	// A: opened and reset by the client.
	b.add(tcpSeg{src: c, dst: s, seq: 1000, syn: true, mss: 1460, ttl: 62})
	b.add(tcpSeg{src: s, dst: c, seq: 5000, ack: 1001, syn: true, ackF: true, mss: 1460, after: 10 * time.Microsecond})
	b.add(tcpSeg{src: c, dst: s, seq: 1001, ack: 5001, ackF: true, ttl: 62, after: ms})
	b.add(tcpSeg{src: c, dst: s, seq: 1001, ack: 5001, ackF: true, rst: true, ttl: 62, after: ms})
	// B: the same ports 500 ms later, a new ISN; its handshake goes on
	// past the second after A closed.
	const ci, si = 90000, 70000
	b.add(tcpSeg{src: c, dst: s, seq: ci, syn: true, mss: 1460, ttl: 62, after: 500 * ms})
	b.add(tcpSeg{src: s, dst: c, seq: si, ack: ci + 1, syn: true, ackF: true, mss: 1460, after: 10 * time.Microsecond})
	b.add(tcpSeg{src: c, dst: s, seq: ci + 1, ack: si + 1, ackF: true, ttl: 62, after: ms})
	b.add(tcpSeg{src: c, dst: s, seq: ci + 1, ack: si + 1, ackF: true, data: helloRecord(517), ttl: 62, after: ms})
	b.add(tcpSeg{src: s, dst: c, seq: si + 1, ack: ci + 518, ackF: true, after: 10 * time.Microsecond})
	flight := append([]byte{22, 3, 3, 0x03, 0xe3, 2}, make([]byte, 1000-6)...)
	b.add(tcpSeg{src: s, dst: c, seq: si + 1, ack: ci + 518, ackF: true, data: flight, after: 700 * ms})
	b.add(tcpSeg{src: c, dst: s, seq: ci + 518, ack: si + 1001, ackF: true, ttl: 62, after: ms})
	b.add(tcpSeg{src: c, dst: s, seq: ci + 518, ack: si + 1001, ackF: true, data: []byte{20, 3, 3, 0, 1, 1}, ttl: 62, after: ms})
	b.add(tcpSeg{src: s, dst: c, seq: si + 1001, ack: ci + 524, ackF: true, after: ms})
	res, err := File(b.file("reuse.pcap"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	st := res.Stats["capture"]
	if st.Flows != 2 || st.PacketsWithoutSYN != 0 {
		t.Errorf("stats %+v: want 2 flows, every packet recorded", st)
	}
	if res.Outcomes[diagnose.Completed] != 1 {
		t.Errorf("outcomes %v, want the second connection completed", res.Outcomes)
	}
}
