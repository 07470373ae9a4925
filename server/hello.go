package server

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"

	"github.com/mtuscope/mtuscope/tlswire"
)

// maxHelloCapture bounds the bytes kept while a ClientHello arrives: a
// handshake message header says at most 2^24 bytes, a real hello is under
// 16 KiB (browsers' are about 1.8 KB), and anything larger is not waited
// for.
const maxHelloCapture = 16 << 10

// helloSniffer watches the first bytes a client sends and tells how much of
// its ClientHello arrived. It copies at most maxHelloCapture bytes and
// never fails: input that is not a TLS handshake just ends the watch.
type helloSniffer struct {
	pending []byte // bytes of the current record not yet consumed
	recLeft int    // bytes of the current handshake record still to come
	msg     []byte // handshake message bytes so far
	raw     []byte // the records that carry it, headers included
	held    int    // bytes reserved from sniffBudget
	freed   int    // message bytes that arrived before Release
	// Truncated is set when the budget ran out before the hello was whole.
	Truncated bool
	// Records counts record bytes (headers included) that made up the hello.
	Records int
	// Expected is the handshake message size (4-byte header included) once
	// its header arrived, 0 before.
	Expected int
	// NotTLS is set when the first bytes are not a TLS handshake record.
	NotTLS bool
	// Done is set once the whole hello arrived (or NotTLS or too large).
	Done bool
	// Hash is the SHA-256 of the whole handshake message, hex, once Done;
	// RecordHash the SHA-256 of the records that carried it (what probe
	// hashes), and SessionID the hello's legacy_session_id, hex.
	Hash       string
	RecordHash string
	SessionID  string
	// Features is what the hello, or the part of it that arrived, shows
	// of the features devices reject; read once, when it is whole or when
	// the sniffer stops (the connection ended).
	Features tlswire.HelloFeatures
}

// Got returns the bytes of the handshake message that arrived.
func (h *helloSniffer) Got() int {
	if h.Hash != "" {
		return h.Expected
	}
	return len(h.msg) + h.freed
}

// sniffBudget bounds the bytes all sniffers hold at once: a flood of
// connections that each send most of a huge ClientHello and stall cannot
// grow the server past it. A sniffer that finds the budget spent stops
// copying (it still counts what arrived).
var sniffBudget = struct {
	sync.Mutex
	used, max int64
}{max: 32 << 20}

func (h *helloSniffer) reserve(n int) bool {
	sniffBudget.Lock()
	defer sniffBudget.Unlock()
	if sniffBudget.used+int64(n) > sniffBudget.max {
		return false
	}
	sniffBudget.used += int64(n)
	h.held += n
	return true
}

// Release frees the sniffer's buffers (the connection ended): what it
// learned stays, the bytes go back to the budget.
func (h *helloSniffer) Release() {
	if h.Hash == "" && len(h.msg) > 0 {
		h.Features = readFeatures(h.msg)
	}
	h.freed += len(h.msg)
	h.msg, h.raw, h.pending = nil, nil, nil
	sniffBudget.Lock()
	sniffBudget.used -= int64(h.held)
	sniffBudget.Unlock()
	h.held = 0
	h.Done = true
}

// Feed gives the sniffer bytes as they were read from the connection.
func (h *helloSniffer) Feed(b []byte) {
	for len(b) > 0 && !h.Done {
		if h.recLeft == 0 {
			// Collect a 5-byte record header.
			need := tlswire.RecordHeaderLen - len(h.pending)
			if len(b) < need {
				h.pending = append(h.pending, b...)
				return
			}
			hdr := append(h.pending, b[:need]...)
			h.raw = append(h.raw, hdr...)
			b = b[need:]
			h.pending = nil
			rh, err := tlswire.ParseRecordHeader(hdr)
			if err != nil || rh.Type != tlswire.RecordHandshake || rh.Length == 0 {
				h.NotTLS, h.Done = true, true
				return
			}
			h.recLeft = rh.Length
			h.Records += tlswire.RecordHeaderLen
			continue
		}
		n := min(len(b), h.recLeft)
		if h.Expected == 0 && len(h.msg) < 4 {
			n = min(n, 4-len(h.msg)) // decide on the header before reading on
		} else if h.Expected > 0 {
			n = min(n, h.Expected-len(h.msg))
		}
		if !h.reserve(2 * n) {
			h.Truncated = true
			h.freed += len(h.msg) + n
			h.Release()
			return
		}
		h.msg = append(h.msg, b[:n]...)
		h.raw = append(h.raw, b[:n]...)
		h.Records += n
		h.recLeft -= n
		b = b[n:]
		h.check()
	}
}

func (h *helloSniffer) check() {
	if h.Expected == 0 && len(h.msg) >= 4 {
		if h.msg[0] != tlswire.TypeClientHello {
			h.NotTLS, h.Done = true, true
			return
		}
		h.Expected = 4 + (int(h.msg[1])<<16 | int(h.msg[2])<<8 | int(h.msg[3]))
		if h.Expected > maxHelloCapture {
			h.Done = true
			return
		}
	}
	if h.Expected > 0 && len(h.msg) >= h.Expected {
		sum := sha256.Sum256(h.msg[:h.Expected])
		h.Hash = hex.EncodeToString(sum[:])
		sum = sha256.Sum256(h.raw)
		h.RecordHash = hex.EncodeToString(sum[:])
		h.Features = readFeatures(h.msg[:h.Expected])
		if ch, err := tlswire.ParseClientHello(h.msg[:h.Expected]); err == nil {
			h.SessionID = hex.EncodeToString(ch.SessionID)
		}
		h.Release()
		h.freed = 0 // Got reports Expected once Hash is set
	}
}

// readFeatures reads what a hello carried; its server name, which any
// client chooses and reports show, is kept to a DNS name's 253 bytes.
func readFeatures(msg []byte) tlswire.HelloFeatures {
	f := tlswire.ReadHelloFeatures(msg)
	f.ServerName = truncate(f.ServerName, 253)
	return f
}

// Complete reports whether the whole ClientHello arrived.
func (h *helloSniffer) Complete() bool { return h.Hash != "" }
