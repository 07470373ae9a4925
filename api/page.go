package api

// The page's wire types: what web/static/app.js posts to SessionsPath and
// the rung listeners, and what it reads back. spec.md's "The page's API"
// says what each field means; api/page_test.go checks that app.js uses
// these names.

// SessionRequest is what the page posts to SessionsPath to start a check.
type SessionRequest struct {
	RTTms int `json:"rtt_ms"` // the page's measured round trip to the server
}

// Turn says whether a session may test now. A session whose address (or
// /64) already has a check testing waits: Position says how many are
// ahead, and the page asks SessionsPath/{id}/start again after RetryMs.
type Turn struct {
	Started  bool `json:"started"`
	Position int  `json:"position,omitempty"`
	RetryMs  int  `json:"retry_ms,omitempty"`
}

// Session is the answer to SessionRequest (201): what the page tests.
type Session struct {
	ID string `json:"id"`
	// Families are the address families the page tests: one, with no
	// host, on the address the page was opened at; or both, each at its
	// own host name, when the server has one per family.
	Families []SessionFamily `json:"families"`
	Rungs    []Rung          `json:"rungs"`
	// DownloadBytes and UploadBytes are the sizes of the download and
	// upload steps; MinTimeoutMs and MaxTimeoutMs bound a step's wait.
	DownloadBytes int `json:"download_bytes"`
	UploadBytes   int `json:"upload_bytes"`
	MinTimeoutMs  int `json:"min_timeout_ms"`
	MaxTimeoutMs  int `json:"max_timeout_ms"`
	// RungScheme is how the page reaches the rungs: RungHTTPS, or
	// RungHTTP when the page was opened over http:// and the certificate
	// is the self-signed one (a browser would refuse every rung's
	// handshake).
	RungScheme string `json:"rung_scheme"`
	Turn
}

// Rung schemes (Session.RungScheme).
const (
	RungHTTPS = "https"
	RungHTTP  = "http"
)

// SessionFamily is one address family a session tests, and the host name
// the page reaches it at (empty: the host the page was opened at).
type SessionFamily struct {
	Family int    `json:"family"`
	Host   string `json:"host,omitempty"`
}

// Step results: what the page saw of one step of a rung test
// (BrowserRung's Hello, Down, Up and Probe). An empty step is one the
// page did not report.
const (
	StepOK      = "ok"
	StepFail    = "fail"
	StepSkipped = "skipped" // not tested: the server was busy, or an earlier step failed
	StepOpened  = "opened"  // Probe only: the page opened the server-first connection
)

// BrowserRung is what the page measured on one rung (one MSS, one family).
type BrowserRung struct {
	MSS    int    `json:"mss"`
	Family int    `json:"family"`
	Hello  string `json:"hello"` // a fresh TLS connection and a small request
	Down   string `json:"down"`  // a download larger than one segment
	Up     string `json:"up"`    // an upload larger than one segment
	Probe  string `json:"probe"` // the server-first segment: the page only opens it
	// Millis is how long the hello step took, or how long it was waited for.
	Millis int    `json:"ms"`
	Error  string `json:"error,omitempty"`
	// Retried says the page tested this size a second time with a longer
	// wait, because its round's passes ran slow (a busy client or server).
	Retried bool `json:"retried,omitempty"`
}

// PageResult is what the page posts to SessionsPath/{id}/refine after its
// first round and to SessionsPath/{id}/result when its tests are done.
type PageResult struct {
	Rungs     []BrowserRung `json:"rungs"`
	RTTms     float64       `json:"rtt_ms"`
	TimeoutMs int           `json:"timeout_ms"` // the step timeout the page used
}

// Refinement is the answer to the first round's PageResult: the second
// round, which finds the boundary to the byte on ports lent to the
// session for its turn only. No families: nothing to refine.
type Refinement struct {
	Families []RefineFamily `json:"families"`
	// WaitMs is how long the page holds an ExactPort connection open.
	WaitMs int `json:"wait_ms"`
}

// RefineFamily is what the page tests in the refinement round of one
// family.
type RefineFamily struct {
	Family int `json:"family"`
	// Rungs are listeners clamped to each size inside the upstream
	// bracket, on which the page repeats its steps.
	Rungs []Rung `json:"rungs,omitempty"`
	// ExactPort is the server-first listener that writes one segment of
	// each of ExactSizes (IP packet bytes), smallest first: the page only
	// opens it.
	ExactPort  int   `json:"exact_port,omitempty"`
	ExactSizes []int `json:"exact_sizes,omitempty"`
	// Up and Down are the brackets [largest passed, smallest lost] of IP
	// packet sizes the first round found, 0 where it found none.
	Up   [2]int `json:"up"`
	Down [2]int `json:"down"`
}

// CertificateRefused is the 422 answer to a result whose rungs the browser
// would not talk to because it refused the server's certificate: not a
// network result, and nothing is stored.
type CertificateRefused struct {
	CertificateUntrusted bool   `json:"certificate_untrusted"` // always true
	Alert                string `json:"alert"`                 // the TLS alert the browser sent, as Go names it
	Error                string `json:"error"`                 // what the page shows
}

// Claim is the answer to RungClaimPath: whether the session now holds the
// turn of the address the request came from; if not, the page asks again
// after RetryMs.
type Claim struct {
	Claimed bool `json:"claimed"`
	RetryMs int  `json:"retry_ms"`
}

// Uploaded is the answer to RungUpPath: the bytes the server received.
type Uploaded struct {
	Received int64 `json:"received"`
}
