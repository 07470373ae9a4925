package server

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// tokenOK reports whether r carries the operator token, as a bearer token
// or as the password of basic authentication (for browsers).
func tokenOK(r *http.Request, token string) bool {
	got := ""
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		got = strings.TrimPrefix(h, "Bearer ")
	} else if _, p, ok := r.BasicAuth(); ok {
		got = p
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}
