package watch

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/internal/adminhost"
	"github.com/mtuscope/mtuscope/monitor"
)

//go:embed templates/*.tmpl
var templates embed.FS

var viewTmpl = template.Must(template.New("view.html.tmpl").Funcs(template.FuncMap{
	"pct":   func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"time":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"chart": chart,
	"join":  strings.Join,
	"count": func(m map[diagnose.Outcome]int, o string) int { return m[diagnose.Outcome(o)] },
	"anchor": func(s string) string {
		return "n-" + strings.NewReplacer("/", "-", ".", "-", ":", "-").Replace(s)
	},
}).ParseFS(templates, "templates/*.tmpl"))

// viewNetworks caps the networks the view shows (the most troubled first).
const viewNetworks = 100

// Handler returns the admin listener's handler: the operator view at /,
// /metrics, /healthz, and the JSON of /api/networks and /api/alerts. As
// serve's admin listener, it answers only requests that name it by an IP
// address or localhost (DNS rebinding), except /metrics and /healthz.
func (w *Watcher) Handler() http.Handler {
	mux := http.NewServeMux()
	reg := monitor.NewRegistry(w.Monitor, w.Figures, w.Senders, w.HSLog)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) { fmt.Fprintln(rw, "ok") })
	mux.HandleFunc("GET /api/networks", func(rw http.ResponseWriter, _ *http.Request) {
		writeJSON(rw, w.Monitor.Snapshot(true))
	})
	mux.HandleFunc("GET /api/alerts", func(rw http.ResponseWriter, r *http.Request) {
		if w.Store == nil {
			writeJSON(rw, w.Monitor.Snapshot(false).Alerts)
			return
		}
		recs, err := w.Store.Alerts(r.Context(), 500)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(rw, recs)
	})
	mux.HandleFunc("GET /{$}", func(rw http.ResponseWriter, _ *http.Request) {
		snap := w.Monitor.Snapshot(true)
		if len(snap.Networks) > viewNetworks {
			snap.Networks = snap.Networks[:viewNetworks]
		}
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		rw.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
		if err := viewTmpl.Execute(rw, viewData{Snapshot: snap, Figures: w.Figures(), Interface: w.cfg.Interface,
			ASN: w.Resolver.Status().Loaded}); err != nil {
			w.log.Warn("operator view", "err", err)
		}
	})
	return adminhost.Guard(mux)
}

type viewData struct {
	monitor.Snapshot
	Figures   monitor.PipelineStats
	Interface string
	ASN       bool
}

func writeJSON(rw http.ResponseWriter, v any) {
	rw.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(rw)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Chart is an SVG line chart of one network's completion rate per bucket.
type Chart struct {
	Width, Height int
	Line          string // polyline points of the completion rate
	Stalls        []Bar  // buckets with stalls
}

// Bar marks one bucket.
type Bar struct{ X, Y, W, H float64 }

// chart lays out a network's series: x is time, y the completion rate of
// completed and stalled handshakes; buckets without any leave a gap.
func chart(series []monitor.Point) Chart {
	c := Chart{Width: 360, Height: 60}
	if len(series) == 0 {
		return c
	}
	step := float64(c.Width) / float64(len(series))
	var pts []string
	for i, p := range series {
		n := p.Completed + p.Stalled
		if n == 0 {
			continue
		}
		x := step * (float64(i) + 0.5)
		y := float64(c.Height) * (1 - float64(p.Completed)/float64(n))
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		if p.Stalled > 0 {
			c.Stalls = append(c.Stalls, Bar{X: step * float64(i), Y: 0, W: step, H: float64(c.Height)})
		}
	}
	c.Line = strings.Join(pts, " ")
	return c
}

// ServeAdmin starts the admin listener on addr and returns its address;
// it stops when ctx ends.
func (w *Watcher) ServeAdmin(ctx context.Context, addr string) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("admin listener: %w", err)
	}
	srv := &http.Server{
		Handler: w.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(w.log.Handler(), slog.LevelDebug),
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Error("admin listener", "err", err)
		}
	}()
	return l.Addr().String(), nil
}
