// Package worker wires liverelay's parts into one running worker: the NATS
// connection (or an embedded server), the streams, the consumers, the relay, the
// provider, the dead-letter mover, and the health and metrics server.
package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/config"
	"github.com/liverelay/liverelay/internal/consumer"
	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/fence"
	"github.com/liverelay/liverelay/internal/group"
	"github.com/liverelay/liverelay/internal/health"
	"github.com/liverelay/liverelay/internal/ingest"
	"github.com/liverelay/liverelay/internal/relay"
	"github.com/liverelay/liverelay/internal/retry"
)

// Run wires a worker from cfg and runs it until ctx is cancelled; then it stops
// pulling, flushes what is merged, acks, and flushes the connection. version is the
// build's, for liverelay_build_info; stdout is where the stdout provider prints.
func Run(ctx context.Context, cfg config.Config, version string, stdout io.Writer, log *zap.Logger) (err error) {
	defer func() {
		// Stopped while a call was on its way (set-up, most likely): nothing is held
		// that a stop must hand over, so it is a clean stop, not that call's failure.
		if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
			log.Info("stopped before the worker was running", zap.NamedError("interrupted", err))
			err = nil
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "liverelay_build_info",
		Help:        "Always 1; its labels name the worker's version and the Go release it was built with.",
		ConstLabels: prometheus.Labels{"version": version, "go_version": runtime.Version()}},
		func() float64 { return 1 }))

	url := cfg.NATSURL
	if cfg.Embedded() {
		emb, err := broker.StartEmbedded(broker.EmbeddedConfig{
			Listen: cfg.EmbeddedListen, DataDir: cfg.DataDir, Sync: cfg.EmbeddedSync,
			Token: cfg.EmbeddedToken, User: cfg.EmbeddedUser, Password: cfg.EmbeddedPassword,
		}, log)
		if err != nil {
			return err
		}
		defer emb.Shutdown()
		url = emb.ClientURL()
	}
	nc, err := broker.Connect(url, "liverelay-worker", Auth(cfg), log)
	if err != nil {
		return err
	}
	defer nc.Close()
	broker.Instrument(reg, nc)
	// A publish whose reply is lost (a leader that died after storing it) fails in time.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(broker.PublishAsyncTimeout))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	top := broker.Topology{
		Stream: cfg.Stream, Prefix: cfg.SubjectPrefix, DLQStream: cfg.DLQStream, DLQPrefix: cfg.DLQPrefix,
		Partitions: cfg.Partitions, Replicas: cfg.Replicas, DuplicateWindow: cfg.DuplicateWindow, MaxAge: cfg.EventsMaxAge,
		DLQMaxAge: cfg.DLQMaxAge,
	}
	setupCtx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if err := top.Ensure(setupCtx, js); err != nil {
		return err
	}
	t := Timings(cfg.AckWait)
	if err := top.EnsureConsumers(setupCtx, js, broker.ConsumerConfig{
		AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver, MaxAckPending: cfg.MaxAckPending,
		PinnedTTL: t.PinnedTTL,
	}); err != nil {
		return err
	}

	advisories, err := top.EnsureAdvisoryConsumer(setupCtx, js, dlq.MoverAckWait)
	if err != nil {
		return err
	}
	events, err := js.Stream(setupCtx, top.Stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", top.Stream, err)
	}
	revisions, err := fence.Open(setupCtx, js, fence.Config{
		Bucket: cfg.FenceBucket, Replicas: cfg.Replicas, TTL: cfg.FenceTTL,
		CacheTTL:   fence.DefaultCacheTTL,
		History:    consumer.NewHistory(events, top),
		Redelivery: t.Redelivery,
	}, reg, log.Named("fence"))
	if err != nil {
		return err
	}
	workers, err := group.OpenBucket(setupCtx, js, top.WorkersBucket(), cfg.Replicas, group.DefaultTiming)
	if err != nil {
		return err
	}
	name := cfg.ResolvedWorkerName()
	self := group.Member{ID: nuid.Next(), Name: name, Started: time.Now().UTC()}
	log = log.With(zap.String("worker", name))
	members := group.NewMembership(workers, self, group.DefaultTiming, log.Named("group"))
	if err := members.Join(setupCtx); err != nil {
		return err
	}

	provider, err := newProvider(cfg, stdout, log)
	if err != nil {
		return err
	}
	dead := dlq.NewWriter(js, cfg.DLQPrefix, reg)
	consCfg := consumer.Config{
		Self: self.ID, PullBatch: consumer.PullBatch(cfg.MaxAckPending, top.Partitions), PullExpiry: t.PullExpiry, PinnedTTL: t.PinnedTTL, HandoverTimeout: t.Handover, AckWait: cfg.AckWait,
		Acquired: revisions.Acquire, Released: revisions.Release,
	}
	// The relay and the consumer need each other: the relay asks what the consumer
	// holds, the consumer feeds the relay. The ownership is built first and given to
	// both (consumer.Ownership).
	owned := consumer.NewOwnership(consCfg)
	rel, err := relay.New(relay.Config{
		Window:      cfg.BatchWindow,
		MaxEvents:   cfg.BatchMaxEvents,
		MaxBytes:    cfg.BatchMaxBytes,
		Concurrency: cfg.PublishConcurrency,
		Retry: retry.Policy{
			Initial: cfg.Retry.Initial, Max: cfg.Retry.Max, MaxAttempts: cfg.Retry.MaxAttempts, MaxElapsed: cfg.Retry.MaxElapsed,
		},
		KeepAlive:       t.KeepAlive,
		ShutdownTimeout: cfg.ShutdownTimeout,
	}, relay.Deps{Provider: provider, DeadLetters: dead, Fence: revisions, Owner: owned, Registry: reg, Log: log.Named("relay")})
	if err != nil {
		return err
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "liverelay_worker_info",
		Help:        "Always 1; its labels name this worker (LIVE_WORKER_NAME) and its provider (LIVE_PROVIDER).",
		ConstLabels: prometheus.Labels{"worker": name, "provider": provider.Name()}},
		func() float64 { return 1 }))

	var hs *health.Server
	if cfg.HTTPAddr != "" {
		if hs, err = health.Listen(cfg.HTTPAddr, reg, log.Named("http")); err != nil {
			return err
		}
		if cfg.Pprof {
			hs.EnableProfiling()
		}
	}
	mover := dlq.NewMover(advisories, events, dead, dlq.LastToken, log.Named("dlq-mover"))
	cons, err := consumer.New(consCfg, consumer.Deps{
		Conn: nc, JetStream: js, Stream: events, Topology: top, Group: members, Ownership: owned,
		Relay: rel, DeadLetters: dead, Registry: reg, Log: log.Named("consumer"),
	})
	if err != nil {
		return err
	}
	dlqDepth(reg, js, top.DLQStream)
	backlog := consumer.NewBacklog(events, top, consumer.BacklogInterval, reg)
	if hs != nil {
		hs.SetReadiness(cons.Ready)
	}
	in, err := listenIngest(cfg, js, events, top, reg, log.Named("ingest"))
	if err != nil {
		return err
	}
	log.Info("worker ready", zap.String("provider", provider.Name()), zap.Int("partitions", top.Partitions), zap.String("nats", nc.ConnectedUrlRedacted()))

	g, gctx := errgroup.WithContext(ctx)
	// The relay must outlive the consumer, which hands its partitions over at shutdown
	// through it; the fence must outlive the relay's flush. So each stops only after
	// the one before it returned.
	relCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	fenceCtx, stopFence := context.WithCancel(context.WithoutCancel(ctx))
	groupCtx, stopGroup := context.WithCancel(context.WithoutCancel(ctx))
	fenceDone, relDone, groupDone := make(chan struct{}), make(chan error, 1), make(chan struct{})
	go func() {
		defer close(fenceDone)
		_ = revisions.Run(fenceCtx, fence.DefaultFlushTimeout)
	}()
	go func() {
		defer close(groupDone)
		if err := members.Run(groupCtx); err != nil {
			log.Error("worker group", zap.Error(err))
		}
	}()
	go func() {
		defer stopFence()
		relDone <- rel.Run(relCtx)
	}()
	g.Go(func() error {
		defer stopRelay()
		return cons.Run(gctx)
	})
	g.Go(func() error { return mover.Run(gctx) })
	g.Go(func() error { return backlog.Run(gctx) })
	if hs != nil {
		g.Go(func() error { return hs.Serve(gctx) })
	}
	if in != nil {
		// On stop it takes no new request and finishes those being stored, before
		// the connection closes.
		g.Go(func() error { return in.Serve(gctx) })
	}
	err = g.Wait()
	stopRelay()
	if rerr := <-relDone; err == nil {
		err = rerr
	}
	stopFence()
	<-fenceDone
	stopGroup()
	<-groupDone
	// Acks are sent asynchronously: a flush round trip makes sure the server has them.
	if ferr := nc.FlushTimeout(connFlushTimeout); ferr != nil {
		log.Warn("flush NATS connection; unsent acks will be redelivered", zap.Error(ferr))
	}
	log.Info("worker stopped")
	return err
}

// listenIngest opens the Pusher-compatible ingest when LIVE_INGEST_ADDR is set; nil
// otherwise.
func listenIngest(cfg config.Config, js jetstream.JetStream, events jetstream.Stream, top broker.Topology, reg prometheus.Registerer, log *zap.Logger) (*ingest.Server, error) {
	if cfg.Ingest.Addr == "" {
		return nil, nil
	}
	secret, err := cfg.IngestSecret()
	if err != nil {
		return nil, err
	}
	h, err := ingest.NewHandler(ingest.Config{
		Credentials: ingest.Credentials{AppID: cfg.Ingest.AppID, Key: cfg.Ingest.Key, Secret: secret},
		EventName:   cfg.Ingest.EventName,
		MaxBytes:    cfg.Ingest.MaxBytes,
	}, ingest.NewJournal(js, events, top), reg, log)
	if err != nil {
		return nil, err
	}
	return ingest.Listen(cfg.Ingest.Addr, ingest.TLS{CertFile: cfg.Ingest.TLSCert, KeyFile: cfg.Ingest.TLSKey}, h, log)
}

// Auth is the NATS authentication cfg describes; every command that connects uses it.
// Without LIVE_NATS_URL and LIVE_NATS_* credentials, that is the embedded server's own
// token or user and password.
func Auth(cfg config.Config) broker.Auth {
	a := broker.Auth{
		Creds: cfg.NATSCreds, NKeyFile: cfg.NATSNKey, Token: cfg.NATSToken, User: cfg.NATSUser, Password: cfg.NATSPassword,
		TLSCA: cfg.NATSTLSCA, TLSCert: cfg.NATSTLSCert, TLSKey: cfg.NATSTLSKey,
	}
	if cfg.Embedded() && a == (broker.Auth{}) {
		// An operator command given --nats keeps the LIVE_NATS_* credentials it has.
		return broker.Auth{Token: cfg.EmbeddedToken, User: cfg.EmbeddedUser, Password: cfg.EmbeddedPassword}
	}
	return a
}
