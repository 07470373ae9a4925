package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtuscope/mtuscope/internal/textsafe"
)

// Sender delivers alerts to one HTTP receiver (Alertmanager's API or a
// generic JSON webhook) from a bounded queue, retrying failed posts with
// backoff. Firing alerts are posted again every Resend so that
// Alertmanager, which resolves an alert it stops hearing about, keeps
// them until the monitor resolves them.
type Sender struct {
	// Name labels the receiver in logs and metrics: "alertmanager", "webhook".
	Name string
	// URL is where alerts are posted.
	URL string
	// Encode turns a batch into the request body.
	Encode func([]Alert) ([]byte, error)
	// Client is the HTTP client (its Timeout bounds one attempt).
	Client *http.Client
	// QueueSize bounds the alerts waiting (the oldest are dropped, counted).
	QueueSize int
	// Attempts is how many times one batch is tried; Backoff the first
	// wait between attempts, doubled each time.
	Attempts int
	Backoff  time.Duration
	// Resend is how often firing alerts are posted again (0: never).
	Resend time.Duration
	Logger *slog.Logger

	mu     sync.Mutex
	queue  []Alert
	active map[string]Alert
	wake   chan struct{}

	sent, failed, dropped atomic.Uint64
}

// NewAlertmanager returns a Sender posting to Alertmanager's v2 API at
// base (e.g. http://127.0.0.1:9093).
func NewAlertmanager(base string, logger *slog.Logger) *Sender {
	return newSender("alertmanager", strings.TrimRight(base, "/")+"/api/v2/alerts", encodeAlertmanager, logger)
}

// NewWebhook returns a Sender posting {"version": "1", "alerts": [...]}
// with the alerts as monitor.Alert JSON to url.
func NewWebhook(url string, logger *slog.Logger) *Sender {
	return newSender("webhook", url, encodeWebhook, logger)
}

func newSender(name, url string, enc func([]Alert) ([]byte, error), logger *slog.Logger) *Sender {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Sender{Name: name, URL: url, Encode: enc, Client: &http.Client{Timeout: 10 * time.Second},
		QueueSize: 1000, Attempts: 5, Backoff: 500 * time.Millisecond, Resend: time.Minute,
		Logger: logger.With("receiver", name)}
}

func (s *Sender) init() {
	if s.wake == nil {
		s.wake = make(chan struct{}, 1)
		s.active = map[string]Alert{}
	}
}

// Enqueue queues an alert change without blocking.
func (s *Sender) Enqueue(a Alert) {
	s.mu.Lock()
	s.init()
	if a.State == Firing {
		s.active[a.ID] = a
	} else {
		delete(s.active, a.ID)
	}
	s.queue = append(s.queue, a)
	if over := len(s.queue) - max(1, s.QueueSize); over > 0 {
		s.queue = s.queue[over:]
		s.dropped.Add(uint64(over))
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Counts returns the alerts posted, the ones given up on after every
// attempt failed, and the ones dropped from a full queue.
func (s *Sender) Counts() (sent, failed, dropped uint64) {
	return s.sent.Load(), s.failed.Load(), s.dropped.Load()
}

// Run posts queued alerts until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	s.mu.Lock()
	s.init()
	s.mu.Unlock()
	var resend <-chan time.Time
	if s.Resend > 0 {
		t := time.NewTicker(s.Resend)
		defer t.Stop()
		resend = t.C
	}
	for {
		s.sendQueued(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-resend:
			s.mu.Lock()
			for _, a := range s.active {
				s.queue = append(s.queue, a)
			}
			s.mu.Unlock()
		}
	}
}

// Drain posts everything queued now and returns when the queue is empty
// or ctx ends: the end of a replay.
func (s *Sender) Drain(ctx context.Context) error {
	s.mu.Lock()
	s.init()
	s.mu.Unlock()
	s.sendQueued(ctx)
	return ctx.Err()
}

const batchSize = 64

func (s *Sender) sendQueued(ctx context.Context) {
	for ctx.Err() == nil {
		s.mu.Lock()
		n := min(len(s.queue), batchSize)
		batch := append([]Alert(nil), s.queue[:n]...)
		s.queue = s.queue[n:]
		s.mu.Unlock()
		if n == 0 {
			return
		}
		if err := s.post(ctx, batch); err != nil {
			s.failed.Add(uint64(len(batch)))
			s.Logger.Warn("alerts not delivered", "alerts", len(batch), "err", err)
			continue
		}
		s.sent.Add(uint64(len(batch)))
	}
}

func (s *Sender) post(ctx context.Context, batch []Alert) error {
	body, err := s.Encode(batch)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	wait := s.Backoff
	var last error
	for i := 0; i < max(1, s.Attempts); i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return errors.Join(last, ctx.Err())
			case <-time.After(wait):
			}
			wait = min(2*wait, 30*time.Second)
		}
		if last = s.attempt(ctx, body); last == nil {
			return nil
		}
		var perm permanent
		if errors.As(last, &perm) {
			return last
		}
	}
	return last
}

// permanent is an answer that retrying will not change (a 4xx).
type permanent struct{ error }

func (s *Sender) attempt(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return permanent{fmt.Errorf("post %s: %w", s.URL, err)}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.Client.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w", s.URL, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests:
		return permanent{fmt.Errorf("post %s: %s: %s", s.URL, resp.Status, strings.TrimSpace(string(msg)))}
	default:
		return fmt.Errorf("post %s: %s: %s", s.URL, resp.Status, strings.TrimSpace(string(msg)))
	}
}

// amAlert is one alert in Alertmanager's v2 postableAlert shape.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       *time.Time        `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Alert names in Alertmanager.
const (
	AlertNameNetwork = "MtuscopeNetworkHandshakesStalled"
	AlertNameServer  = "MtuscopeServerHandshakesFailing"
	AlertNameFeature = "MtuscopeNetworkHelloFeatureRejected"
)

// AlertmanagerLabels are the labels an alert carries in Alertmanager:
// the same while it fires and when it resolves.
func AlertmanagerLabels(a Alert) map[string]string {
	if a.Kind == KindServer {
		return map[string]string{"alertname": AlertNameServer, "severity": "critical", "source": "mtuscope-watch"}
	}
	if a.Kind == KindFeature && a.Feature != nil {
		return map[string]string{"alertname": AlertNameFeature, "severity": "warning", "source": "mtuscope-watch",
			"network": a.Network, "asn": strconv.FormatUint(uint64(a.ASN), 10), "feature": a.Feature.Feature}
	}
	return map[string]string{"alertname": AlertNameNetwork, "severity": "warning", "source": "mtuscope-watch",
		"network": a.Network, "asn": strconv.FormatUint(uint64(a.ASN), 10)}
}

func encodeAlertmanager(batch []Alert) ([]byte, error) {
	out := make([]amAlert, 0, len(batch))
	for _, a := range batch {
		d := a.Diagnosis
		// Every annotation goes through textsafe: an organisation name from
		// the ASN data reaches the summary, and a receiver may print it.
		esc := textsafe.Escape
		ann := map[string]string{"summary": esc(a.Summary), "verdict": string(d.Verdict), "direction": string(d.Direction),
			"org": esc(a.Org), "page_url": esc(a.PageURL)}
		if d.PathMTU > 0 {
			ann["path_mtu"] = strconv.Itoa(d.PathMTU)
		}
		var desc, fixes []string
		for _, f := range d.Findings {
			desc = append(desc, esc(f.Detail))
		}
		for _, f := range d.Fixes {
			line := f.Title
			if len(f.Commands) > 0 {
				line += ": " + f.Commands[0]
			}
			fixes = append(fixes, esc(line))
		}
		ann["description"] = strings.Join(desc, "\n")
		ann["fix"] = strings.Join(fixes, "\n")
		for k, v := range ann {
			if v == "" {
				delete(ann, k)
			}
		}
		x := amAlert{Labels: AlertmanagerLabels(a), Annotations: ann, StartsAt: a.StartsAt, GeneratorURL: a.PageURL}
		if a.State == Resolved {
			e := a.EndsAt
			x.EndsAt = &e
		}
		out = append(out, x)
	}
	return json.Marshal(out)
}

func encodeWebhook(batch []Alert) ([]byte, error) {
	return json.Marshal(struct {
		Version string  `json:"version"`
		Alerts  []Alert `json:"alerts"`
	}{"1", batch})
}
