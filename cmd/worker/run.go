package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/errgroup"
	"golang.org/x/term"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/config"
	"github.com/liverelay/liverelay/internal/consumer"
	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/fence"
	"github.com/liverelay/liverelay/internal/health"
	"github.com/liverelay/liverelay/internal/publish"
	"github.com/liverelay/liverelay/internal/relay"
	"github.com/liverelay/liverelay/internal/retry"
)

func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg := config.Default()
	if err := cfg.LoadEnv(os.LookupEnv); err != nil {
		fmt.Fprintf(stderr, "worker: invalid setting:\n%v\n", err)
		return 2
	}
	fs := flag.NewFlagSet("worker run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.Bind(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: worker run [flags]\n\nRuns the relay. Every flag can also be set by the environment variable shown.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "worker: invalid setting:\n%v\n", err)
		return 2
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "worker: %v\n", err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	if err := run(ctx, cfg, stdout, log); err != nil {
		log.Error("worker stopped", zap.Error(err))
		return 1
	}
	return 0
}

func newLogger(cfg config.Config, stderr io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("LIVE_LOG_LEVEL=%q: want debug, info, warn or error", cfg.LogLevel)
	}
	isTerminal := false
	if f, ok := stderr.(*os.File); ok {
		isTerminal = term.IsTerminal(int(f.Fd()))
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	encCfg.EncodeDuration = zapcore.StringDurationEncoder
	var enc zapcore.Encoder
	if cfg.ResolvedLogFormat(isTerminal) == config.FormatConsole {
		encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(stderr)), level)), nil
}

// run wires the worker and runs it until ctx is cancelled: stop pulling, flush what is
// merged, ack, drain the connection.
func run(ctx context.Context, cfg config.Config, stdout io.Writer, log *zap.Logger) error {
	log.Info("liverelay worker starting", zap.String("version", version), zap.Object("config", cfg))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	url := cfg.NATSURL
	if cfg.Embedded() {
		emb, err := broker.StartEmbedded(broker.EmbeddedConfig{Listen: cfg.EmbeddedListen, DataDir: cfg.DataDir, Sync: cfg.EmbeddedSync}, log)
		if err != nil {
			return err
		}
		defer emb.Shutdown()
		url = emb.ClientURL()
	}
	nc, err := broker.Connect(url, "liverelay-worker", broker.Auth{
		Creds: cfg.NATSCreds, NKeyFile: cfg.NATSNKey, Token: cfg.NATSToken, User: cfg.NATSUser, Password: cfg.NATSPassword,
		TLSCA: cfg.NATSTLSCA, TLSCert: cfg.NATSTLSCert, TLSKey: cfg.NATSTLSKey,
	}, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	top := broker.Topology{
		Stream: cfg.Stream, Prefix: cfg.SubjectPrefix, DLQStream: cfg.DLQStream, DLQPrefix: cfg.DLQPrefix,
		Partitions: cfg.Partitions, Replicas: cfg.Replicas, DuplicateWindow: cfg.DuplicateWindow, MaxAge: 7 * 24 * time.Hour,
	}
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := top.Ensure(setupCtx, js); err != nil {
		return err
	}
	const pullExpiry = 5 * time.Second
	consumers, err := top.EnsureConsumers(setupCtx, js, broker.ConsumerConfig{
		AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver, MaxAckPending: cfg.MaxAckPending,
		PinnedTTL: cfg.AckWait + 2*pullExpiry,
	})
	if err != nil {
		return err
	}

	advisories, err := top.EnsureAdvisoryConsumer(setupCtx, js, 30*time.Second)
	if err != nil {
		return err
	}
	events, err := js.Stream(setupCtx, top.Stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", top.Stream, err)
	}
	revisions, err := fence.Open(setupCtx, js, fence.Config{Bucket: cfg.FenceBucket, Replicas: cfg.Replicas, TTL: cfg.FenceTTL})
	if err != nil {
		return err
	}

	provider, err := newProvider(cfg, stdout, log)
	if err != nil {
		return err
	}
	dead := dlq.NewWriter(js, cfg.DLQPrefix)
	rel, err := relay.New(relay.Config{
		Window:      cfg.BatchWindow,
		MaxEvents:   cfg.BatchMaxEvents,
		MaxBytes:    cfg.BatchMaxBytes,
		Concurrency: cfg.PublishConcurrency,
		Retry: retry.Policy{
			Initial: cfg.Retry.Initial, Max: cfg.Retry.Max, MaxAttempts: cfg.Retry.MaxAttempts, MaxElapsed: cfg.Retry.MaxElapsed,
		},
		KeepAlive:       max(cfg.AckWait/3, 100*time.Millisecond),
		ShutdownTimeout: cfg.ShutdownTimeout,
	}, provider, dead, relay.NewMetrics(reg), log.Named("relay"))
	if err != nil {
		return err
	}
	rel.SetFence(revisions)

	var hs *health.Server
	if cfg.HTTPAddr != "" {
		if hs, err = health.Listen(cfg.HTTPAddr, reg, log.Named("http")); err != nil {
			return err
		}
	}
	ready := func() {
		if hs != nil {
			hs.SetReady(true)
		}
		log.Info("worker ready", zap.String("provider", provider.Name()), zap.Int("partitions", cfg.Partitions), zap.String("nats", nc.ConnectedUrlRedacted()))
	}
	batch := min(max(cfg.MaxAckPending/cfg.Partitions, 1), 500)
	mover := dlq.NewMover(advisories, events, dead, dlq.LastToken, log.Named("dlq-mover"))
	cons := consumer.New(consumer.Config{PullBatch: batch, PullExpiry: pullExpiry}, top, consumers, rel, dead, reg, log.Named("consumer"), ready)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return rel.Run(gctx) })
	g.Go(func() error { return cons.Run(gctx) })
	g.Go(func() error { return mover.Run(gctx) })
	if hs != nil {
		g.Go(func() error { return hs.Serve(gctx) })
	}
	err = g.Wait()
	// Acks are sent asynchronously: a flush round trip makes sure the server has them.
	if ferr := nc.FlushTimeout(5 * time.Second); ferr != nil {
		log.Warn("flush NATS connection; unsent acks will be redelivered", zap.Error(ferr))
	}
	log.Info("worker stopped")
	return err
}

// newProvider builds the provider LIVE_PROVIDER names.
func newProvider(cfg config.Config, stdout io.Writer, log *zap.Logger) (relay.Provider, error) {
	switch cfg.Provider {
	case config.ProviderStdout:
		return publish.NewStdout(stdout), nil
	case config.ProviderPusher:
		return publish.NewPusher(publish.PusherConfig{
			AppID: cfg.Pusher.AppID, Key: cfg.Pusher.Key, Secret: cfg.Pusher.Secret,
			Cluster: cfg.Pusher.Cluster, Host: cfg.Pusher.Host, Secure: cfg.Pusher.Secure, Timeout: cfg.ProviderTimeout,
		}, log.Named("pusher"))
	default:
		return nil, fmt.Errorf("LIVE_PROVIDER=%q: want one of %v", cfg.Provider, config.Providers())
	}
}
