package tlswire

import (
	"errors"
	"fmt"
	"io"
	"slices"
)

// Retry is what a second ClientHello's transcript begins with (RFC 8446
// section 4.4.1): the first hello and the HelloRetryRequest that answered
// it, both as handshake messages.
type Retry struct {
	First   []byte
	Request []byte
	// Group is the group the server asked a key share for.
	Group Group
}

// AnswerRetry builds the ClientHello that answers a HelloRetryRequest
// (msg, the handshake message) to h: the same hello with a key share for
// the group the server named and its cookie echoed. The padding keeps the
// first hello's size where the new share allows it. It fails when the
// request names a group h did not offer, or one h already sent a share for
// (RFC 8446 section 4.1.4), or when h is itself a second hello.
func (h *Hello) AnswerRetry(msg []byte, rnd io.Reader) (*Hello, error) {
	if h.Retry != nil {
		return nil, fmt.Errorf("%w: a second HelloRetryRequest", ErrMalformed)
	}
	sh, err := ParseServerHello(msg)
	if err != nil {
		return nil, err
	}
	if !sh.RetryRequest {
		return nil, fmt.Errorf("%w: not a HelloRetryRequest", ErrMalformed)
	}
	offered := h.spec.Groups
	if len(offered) == 0 {
		offered = []Group{GroupX25519, GroupP256}
	}
	if !slices.Contains(supportedGroups(append(slices.Clone(h.spec.OfferOnly), offered...)), sh.Group) {
		return nil, fmt.Errorf("%w: HelloRetryRequest for group %v, which the hello did not offer", ErrMalformed, sh.Group)
	}
	if slices.Contains(h.Groups, sh.Group) {
		return nil, fmt.Errorf("%w: HelloRetryRequest for group %v, whose share the hello carried", ErrMalformed, sh.Group)
	}
	second := &Hello{Padding: -1, Groups: []Group{sh.Group}, SessionID: h.SessionID, random: h.random, spec: h.spec,
		Retry: &Retry{First: h.Message(), Request: slices.Clone(msg), Group: sh.Group}}
	err = second.build(rnd, sh.Cookie)
	if errors.Is(err, ErrSize) {
		// The new share does not fit the first hello's size: send it at
		// its own.
		second.spec.Size = 0
		err = second.build(rnd, sh.Cookie)
	}
	if err != nil {
		return nil, err
	}
	return second, nil
}
