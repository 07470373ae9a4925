package analyze

import (
	"bytes"
	"encoding/json"
	"io"
	"net/netip"
	"strconv"
	"time"
)

// WriteJSON writes the result as one indented JSON document (two spaces,
// HTML-safe escaping, a final newline): the bytes a json.Encoder with
// SetIndent("", "  ") writes, without its cost for the handshake list,
// which is written field by field as it is encoded instead of being
// encoded, compacted and re-indented (24,000 handshakes take about
// 14 MB). Everything else goes through encoding/json.
func (r *Result) WriteJSON(w io.Writer) error {
	if len(r.Handshakes) == 0 || !jsonTimesValid(r.Handshakes) {
		// Nothing to gain, or a time encoding/json refuses: let it say so.
		return encodeIndented(w, r)
	}
	c := *r
	c.Handshakes = nil
	var doc bytes.Buffer
	if err := encodeIndented(&doc, &c); err != nil {
		return err
	}
	const hole = "\n  \"handshakes\": null,\n"
	head, tail, ok := bytes.Cut(doc.Bytes(), []byte(hole))
	if !ok || bytes.Contains(tail, []byte(hole)) {
		return encodeIndented(w, r) // cannot happen: the field is at the top level
	}
	buf := make([]byte, 0, 256<<10)
	buf = append(append(buf, head...), "\n  \"handshakes\": ["...)
	for i := range r.Handshakes {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendHandshake(buf, &r.Handshakes[i])
		if len(buf) > 192<<10 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	buf = append(append(buf, "\n  ],\n"...), tail...)
	_, err := w.Write(buf)
	return err
}

func encodeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// jsonTimesValid reports whether encoding/json would encode every
// handshake's times (years 0 to 9999).
func jsonTimesValid(hs []Handshake) bool {
	for i := range hs {
		for _, t := range []time.Time{hs[i].Start, hs[i].End} {
			if y := t.Year(); y < 0 || y > 9999 {
				return false
			}
		}
	}
	return true
}

// appendHandshake appends one element of the handshake list at the depth
// it has in the document, as encoding/json indents it.
func appendHandshake(b []byte, h *Handshake) []byte {
	e := hsEncoder{b: append(b, "\n    {"...)}
	fh := &h.Handshake
	e.addr(`"client"`, fh.Client)
	e.addr(`"server"`, fh.Server)
	e.int(`"family"`, fh.Family, false)
	e.time(`"start"`, fh.Start)
	e.time(`"end"`, fh.End)
	e.str(`"outcome"`, string(fh.Outcome), false)
	e.str(`"detail"`, fh.Detail, true)
	e.flag(`"capture_ended"`, fh.CaptureEnded)
	e.int(`"client_mss"`, fh.ClientMSS, true)
	e.int(`"server_mss"`, fh.ServerMSS, true)
	e.str(`"sni"`, fh.SNI, true)
	e.int(`"hello_bytes"`, fh.HelloBytes, true)
	e.int(`"hello_segments"`, fh.HelloSegments, true)
	e.flag(`"hello_truncated"`, fh.HelloTruncated)
	e.flag(`"pq_key_share"`, fh.PQKeyShare)
	e.flag(`"pq_group_offered"`, fh.PQOffered)
	e.flag(`"mldsa_sigalgs"`, fh.MLDSA)
	e.flag(`"hello_split"`, fh.HelloSplit)
	e.flag(`"reset_hop_differs"`, fh.ResetHopDiffers)
	e.int(`"flight_bytes"`, fh.FlightBytes, true)
	e.bracket(`"up"`, fh.Up.Delivered, fh.Up.Lost)
	e.bracket(`"down"`, fh.Down.Delivered, fh.Down.Lost)
	e.int(`"retransmits"`, fh.Retransmits, false)
	e.int(`"icmp_too_big"`, fh.TooBig, true)
	e.int(`"icmp_mtu"`, fh.TooBigMTU, true)
	e.int(`"fragments"`, fh.Fragments, true)
	e.int(`"lost_packets"`, h.LostPackets, false)
	if h.ClientAtServer != nil {
		e.addr(`"client_at_server"`, *h.ClientAtServer)
	}
	e.b = e.b[:len(e.b)-1] // the last field's comma
	return append(e.b, "\n    }"...)
}

// hsEncoder appends the fields of one handshake, each followed by a comma.
type hsEncoder struct{ b []byte }

const hsIndent = "\n      "

func (e *hsEncoder) field(name string) {
	e.b = append(append(append(e.b, hsIndent...), name...), ": "...)
}

func (e *hsEncoder) int(name string, v int, omitEmpty bool) {
	if v != 0 || !omitEmpty {
		e.field(name)
		e.b = append(strconv.AppendInt(e.b, int64(v), 10), ',')
	}
}

func (e *hsEncoder) str(name, v string, omitEmpty bool) {
	if v != "" || !omitEmpty {
		e.field(name)
		e.b = append(appendJSONString(e.b, v), ',')
	}
}

func (e *hsEncoder) flag(name string, v bool) {
	if v {
		e.field(name)
		e.b = append(e.b, "true,"...)
	}
}

func (e *hsEncoder) addr(name string, a netip.AddrPort) {
	e.field(name)
	var s [64]byte
	t, _ := a.AppendText(s[:0])
	e.b = append(appendJSONBytes(e.b, t), ',')
}

func (e *hsEncoder) time(name string, t time.Time) {
	e.field(name)
	e.b = append(e.b, '"')
	e.b, _ = t.AppendText(e.b) // years checked by jsonTimesValid
	e.b = append(e.b, `",`...)
}

// bracket writes a flow.Bracket: both fields omitted when zero.
func (e *hsEncoder) bracket(name string, delivered, lost int) {
	e.field(name)
	switch {
	case delivered == 0 && lost == 0:
		e.b = append(e.b, "{},"...)
		return
	case lost == 0:
		e.b = append(e.b, "{"+hsIndent+`  "delivered": `...)
		e.b = strconv.AppendInt(e.b, int64(delivered), 10)
	case delivered == 0:
		e.b = append(e.b, "{"+hsIndent+`  "lost": `...)
		e.b = strconv.AppendInt(e.b, int64(lost), 10)
	default:
		e.b = append(e.b, "{"+hsIndent+`  "delivered": `...)
		e.b = strconv.AppendInt(e.b, int64(delivered), 10)
		e.b = append(e.b, ","+hsIndent+`  "lost": `...)
		e.b = strconv.AppendInt(e.b, int64(lost), 10)
	}
	e.b = append(e.b, hsIndent+"},"...)
}

// appendJSONString appends s as encoding/json encodes a string (HTML
// characters escaped, invalid UTF-8 replaced): printable ASCII directly,
// anything else through encoding/json itself.
func appendJSONString[S string | []byte](b []byte, s S) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(string(s))
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendJSONBytes(b, s []byte) []byte { return appendJSONString(b, s) }
