// Package tlswire reads and builds TLS on the wire: record and handshake
// framing, ClientHello parsing and building to an exact size (RFC 7685
// padding), and tracking of a server's first flight up to its last message.
//
// It does no I/O of its own: callers feed it bytes. Parsers distrust their
// input: every length is checked before use and malformed input yields an
// error, never a panic.
package tlswire
