// Package echowire is the wire format of mtuscope serve's UDP echo, which
// probe's datagram and fragment tests use: a request carries a token the
// client fetched over HTTPS, and the reply is never larger than the request.
//
// Request: "MTQ1" | flags (1 byte: FlagEcho, FlagFragment) | token length (1 byte) | token | padding.
// Reply:   "MTR1" | flags (1 byte) | 0 | request size (2 bytes, big endian)
// | the request's bytes from offset 8 on, when FlagEcho asks for them, up to
// the request's size; without FlagEcho the reply is those 8 bytes only, so a
// large fragmented request proves the upstream direction alone.
package echowire

import (
	"encoding/binary"
	"errors"
)

// Magic strings at the start of requests and replies.
const (
	RequestMagic = "MTQ1"
	ReplyMagic   = "MTR1"
)

// Request flags.
const (
	// FlagEcho asks for a reply as large as the request.
	FlagEcho = 1
	// FlagFragment lets the reply be fragmented on the way; without it the
	// reply carries Don't Fragment.
	FlagFragment = 2
)

// ReplyHeaderLen is the size of a reply without echoed bytes.
const ReplyHeaderLen = 8

// MaxTokenLen bounds the token.
const MaxTokenLen = 64

// ErrMalformed reports a datagram that is not a request or reply.
var ErrMalformed = errors.New("echowire: malformed datagram")

// Request is a parsed request.
type Request struct {
	Flags byte
	Token []byte
	Size  int // the whole datagram
}

// AppendRequest builds a request of exactly size bytes (padding with
// zeros), or fails when size cannot hold the header and token.
func AppendRequest(b []byte, flags byte, token []byte, size int) ([]byte, error) {
	if len(token) > MaxTokenLen {
		return nil, errors.New("echowire: token too long")
	}
	min := max(6+len(token), ReplyHeaderLen)
	if size < min || size > 65507 {
		return nil, errors.New("echowire: size cannot hold the request header, or exceeds a datagram")
	}
	b = append(b, RequestMagic...)
	b = append(b, flags, byte(len(token)))
	b = append(b, token...)
	return append(b, make([]byte, size-6-len(token))...), nil
}

// ParseRequest reads a request datagram.
func ParseRequest(d []byte) (Request, error) {
	if len(d) < ReplyHeaderLen || string(d[:4]) != RequestMagic {
		return Request{}, ErrMalformed
	}
	n := int(d[5])
	if n > MaxTokenLen || len(d) < 6+n {
		return Request{}, ErrMalformed
	}
	return Request{Flags: d[4], Token: d[6 : 6+n], Size: len(d)}, nil
}

// AppendReply builds the reply to req (the datagram d): never larger than d.
func AppendReply(b []byte, d []byte, req Request) []byte {
	b = append(b, ReplyMagic...)
	b = append(b, req.Flags, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(min(req.Size, 0xffff)))
	if req.Flags&FlagEcho != 0 && len(d) > ReplyHeaderLen {
		b = append(b, d[ReplyHeaderLen:]...)
	}
	return b
}

// Reply is a parsed reply.
type Reply struct {
	Flags       byte
	RequestSize int // what the server received
	Size        int // the reply datagram
}

// ParseReply reads a reply datagram.
func ParseReply(d []byte) (Reply, error) {
	if len(d) < ReplyHeaderLen || string(d[:4]) != ReplyMagic {
		return Reply{}, ErrMalformed
	}
	return Reply{Flags: d[4], RequestSize: int(binary.BigEndian.Uint16(d[6:8])), Size: len(d)}, nil
}
