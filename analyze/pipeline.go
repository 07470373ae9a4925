package analyze

import (
	"errors"
	"io"
	"time"

	"github.com/mtuscope/mtuscope/capture"
	"github.com/mtuscope/mtuscope/packet"
)

// The packets of a capture are read and decoded in batches on one
// goroutine and handed to the table (package flow's tracker and the
// analyzer's record of its flows) on the calling goroutine. A batch holds
// copies of its frames; a fixed number of batches of bounded size
// circulate, so memory does not grow with the capture.

const (
	batchPackets = 1024
	batchBytes   = 1 << 20
	batches      = 4
)

type batch struct {
	buf  []byte
	pkts []packet.Packet
	ts   []time.Time
}

// pipeline reads src to its end and returns the first and last packet
// times (Unix nanoseconds).
func pipeline(src capture.Source, st *Stats, tb *table) (first, last int64, err error) {
	free := make(chan *batch, batches)
	for range batches {
		free <- &batch{buf: make([]byte, 0, batchBytes), pkts: make([]packet.Packet, 0, batchPackets), ts: make([]time.Time, 0, batchPackets)}
	}
	full := make(chan *batch, batches)
	// The reader writes st, first, last and err; closing full makes them
	// visible here.
	go func() {
		defer close(full)
		first, last, err = readBatches(src, st, free, func(b *batch) { full <- b })
	}()
	for b := range full {
		for i := range b.pkts {
			tb.packet(&b.pkts[i], b.ts[i])
		}
		b.buf, b.pkts, b.ts = b.buf[:0], b.pkts[:0], b.ts[:0]
		free <- b
	}
	return first, last, err
}

// readBatches reads and decodes src into batches taken from free and
// hands each full one to send.
func readBatches(src capture.Source, st *Stats, free chan *batch, send func(*batch)) (first, last int64, err error) {
	b := <-free
	for {
		data, ci, rerr := src.Next()
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
		st.Packets++
		t := ci.Timestamp.UnixNano()
		if first == 0 {
			first = t
		}
		last = max(last, t)
		if len(b.pkts) == batchPackets || len(b.buf)+len(data) > cap(b.buf) && len(b.pkts) > 0 {
			send(b)
			b = <-free
		}
		off := len(b.buf)
		if len(data) > cap(b.buf) { // one frame larger than a batch: its own buffer
			b.buf = make([]byte, 0, len(data))
			off = 0
		}
		b.buf = append(b.buf, data...)
		frame := b.buf[off : off+len(data) : off+len(data)]
		b.pkts = append(b.pkts, packet.Packet{})
		p := &b.pkts[len(b.pkts)-1]
		if derr := packet.Decode(ci.Link, frame, p); derr != nil {
			st.Undecoded++
			if !p.Transport {
				b.pkts = b.pkts[:len(b.pkts)-1]
				b.buf = b.buf[:off]
				continue
			}
		}
		b.ts = append(b.ts, ci.Timestamp)
	}
	if len(b.pkts) > 0 {
		send(b)
	}
	return first, last, err
}
