package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/liverelay/liverelay/internal/config"
	"github.com/liverelay/liverelay/internal/worker"
)

// newRunCommand is "worker run": one flag per setting of the settings table, each
// defaulting to its environment variable.
func (c cli) newRunCommand() *cobra.Command {
	cfg := c.env.cfg
	cmd := newCommand("run", "run the relay (the default); settings come from LIVE_* variables or flags",
		"Runs the relay until SIGTERM or SIGINT; then it stops pulling, publishes what it has merged,\n"+
			"acks, and exits 0. Every flag can also be set by the environment variable shown.",
		0, c.checkedRun("worker", func() int { return runRelay(c.ctx, cfg, c.stdout, c.stderr) }))
	cfg.Bind(cmd.Flags())
	cmd.Flags().SortFlags = false
	return cmd
}

// runRelay validates the configuration, then runs the worker until ctx ends.
func runRelay(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) int {
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
	log.Info("liverelay worker starting", zap.String("version", version), zap.Object("config", cfg))
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

// run is the worker itself (package worker); tests call it in-process.
func run(ctx context.Context, cfg config.Config, stdout io.Writer, log *zap.Logger) error {
	return worker.Run(ctx, cfg, version, stdout, log)
}
