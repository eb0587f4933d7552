package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/event"
)

// Store keeps the events of a request, in order, durably before it returns nil.
type Store interface {
	Append(ctx context.Context, evs []event.Event) error
}

// Config is the ingest's configuration.
type Config struct {
	Credentials
	EventName string        // the only event name accepted, e.g. live-page-update
	MaxBytes  int           // largest data of one event, in bytes
	Timeout   time.Duration // time to store one request's events; 0 is 10 s
}

// Validate names what is missing.
func (c Config) Validate() error {
	var errs []error
	if c.AppID == "" || c.Key == "" || c.Secret == "" {
		errs = append(errs, errors.New("ingest: app id, key and secret are required"))
	}
	if c.EventName == "" {
		errs = append(errs, errors.New("ingest: an event name is required"))
	}
	if c.MaxBytes < 1 {
		errs = append(errs, errors.New("ingest: MaxBytes must be positive"))
	}
	return errors.Join(errs...)
}

// MaxBody is the largest request body taken: a batch of MaxBatch events of maxBytes
// each, escaped as JSON strings (twice the bytes, for HTML full of quotes), and room
// for the rest of the request.
func MaxBody(maxBytes int) int64 { return int64(2*MaxBatch*maxBytes) + 64<<10 }

// Handler answers Pusher's trigger endpoints, POST /apps/{app_id}/events and POST
// /apps/{app_id}/batch_events, as Pusher does: 200 `{}` once every event is stored,
// otherwise a status and a text body saying why (400, 401, 404, 405, 413, and 503 when
// JetStream cannot take the events). Nothing is stored unless the whole request is
// valid.
type Handler struct {
	cfg     Config
	store   Store
	log     *zap.Logger
	now     func() time.Time
	mux     *http.ServeMux
	metrics metrics
}

// NewHandler checks cfg and returns the handler; metrics go to reg (nil: none).
func NewHandler(cfg Config, store Store, reg prometheus.Registerer, log *zap.Logger) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if log == nil {
		log = zap.NewNop()
	}
	h := &Handler{cfg: cfg, store: store, log: log, now: time.Now, mux: http.NewServeMux(), metrics: newMetrics(reg)}
	h.mux.HandleFunc("/apps/{app}/events", func(w http.ResponseWriter, r *http.Request) { h.trigger(w, r, parseEvents) })
	h.mux.HandleFunc("/apps/{app}/batch_events", func(w http.ResponseWriter, r *http.Request) { h.trigger(w, r, parseBatch) })
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.reply(w, refuse(http.StatusNotFound, "Not found: liverelay's ingest serves POST /apps/<app_id>/events and /apps/<app_id>/batch_events"))
	})
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) trigger(w http.ResponseWriter, r *http.Request, parse func([]byte) ([]trigger, *refusal)) {
	start := h.now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reply(w, refuse(http.StatusMethodNotAllowed, "Method %s not allowed: use POST", r.Method))
		return
	}
	bodyMD5, rf := h.cfg.authenticate(r.Method, r.URL.Path, r.URL.RawQuery, start)
	if rf != nil {
		h.reply(w, rf)
		return
	}
	limit := MaxBody(h.cfg.MaxBytes)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.reply(w, refuse(http.StatusRequestEntityTooLarge, "Request body too large: at most %d bytes (LIVE_INGEST_MAX_BYTES=%d per event)", limit, h.cfg.MaxBytes))
			return
		}
		h.reply(w, refuse(http.StatusBadRequest, "Request body unreadable: %v", err))
		return
	}
	if rf := checkBody(bodyMD5, body); rf != nil {
		h.reply(w, rf)
		return
	}
	if app := r.PathValue("app"); app != h.cfg.AppID {
		h.reply(w, refuse(http.StatusNotFound, "Unknown app %q", truncate(app)))
		return
	}
	ts, rf := parse(body)
	if rf == nil {
		rf = check(ts, h.cfg.EventName, h.cfg.MaxBytes)
	}
	if rf != nil {
		h.reply(w, rf)
		return
	}
	evs, rf := updates(ts, start)
	if rf != nil {
		h.reply(w, rf)
		return
	}
	// A request that began storing finishes, even if the client goes away: what it
	// answers then matters less than not leaving half a request behind by choice.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.cfg.Timeout)
	defer cancel()
	if err := h.store.Append(ctx, evs); err != nil {
		if errors.Is(err, ErrTooLarge) {
			h.reply(w, refuse(http.StatusRequestEntityTooLarge, "%v", err))
			return
		}
		h.log.Warn("ingest: events not stored; answered 503", zap.Int("events", len(evs)), zap.Error(err))
		h.reply(w, refuse(http.StatusServiceUnavailable, "Service unavailable: the events could not be stored, retry later (%v)", err))
		return
	}
	h.metrics.events.Add(float64(len(evs)))
	h.metrics.seconds.Observe(h.now().Sub(start).Seconds())
	h.metrics.requests.WithLabelValues("200").Inc()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, "{}")
}

// reply answers a refusal as Pusher does: its status and a text body.
func (h *Handler) reply(w http.ResponseWriter, rf *refusal) {
	h.metrics.requests.WithLabelValues(strconv.Itoa(rf.status)).Inc()
	if rf.status != http.StatusServiceUnavailable {
		h.log.Debug("ingest: request refused", zap.Int("status", rf.status), zap.String("reason", rf.msg))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(rf.status)
	_, _ = fmt.Fprintln(w, rf.msg)
}

type metrics struct {
	requests *prometheus.CounterVec
	events   prometheus.Counter
	seconds  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liverelay_ingest_requests_total",
			Help: "Trigger requests the Pusher-compatible ingest answered, by HTTP status."}, []string{"status"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_ingest_events_total",
			Help: "Events the ingest stored in JetStream (one per channel of a trigger)."}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "liverelay_ingest_request_seconds",
			Help:    "Time from a trigger request's arrival to its 200, every event acknowledged by JetStream.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	// Every status the ingest answers exists from the start, at zero: an alert on a
	// rate of 503s has a series to watch before the first one.
	for _, status := range []int{http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound,
		http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable} {
		m.requests.WithLabelValues(strconv.Itoa(status))
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.events, m.seconds)
	}
	return m
}
