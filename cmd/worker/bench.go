package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/bench"
	"github.com/liverelay/liverelay/internal/config"
	"github.com/liverelay/liverelay/internal/workload"
)

// newBenchCommand is "worker bench": a complete local measurement, see
// docs/benchmarks.md. The flags that mean a setting of "worker run" have its name
// (--batch-window, --partitions, --publish-concurrency, --embedded-sync), with the
// benchmark's own defaults.
func (c cli) newBenchCommand() *cobra.Command {
	const name = "worker bench"
	w := workload.Default()
	cfg := bench.Config{Workload: w}
	var (
		seed    uint64
		noYard  bool
		verbose bool
	)
	cmd := newCommand("bench", "measure throughput, latency, provider messages, CPU and memory locally",
		"Runs JetStream and the worker (each as a child process), a live-blog load and a Pusher-like\n"+
			"provider locally, and reports. The workers read the environment as \"worker run\" does.",
		0, c.checkedRun(name, func() int {
			cfg.Workload.Seed = seed
			cfg.Yardstick = !noYard
			return runBench(c.ctx, cfg, verbose, c.stdout, c.stderr)
		}))
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long load is published")
	fs.IntVar(&cfg.Rate, "rate", 0, "events per second; 0 publishes a backlog as fast as possible, then times its drain")
	fs.IntVar(&cfg.Workload.Channels, "channels", 1000, "live blogs (channels)")
	fs.IntVar(&cfg.Workload.MaxLive, "posts", w.MaxLive, "live posts per channel at most")
	fs.Float64Var(&cfg.Workload.NewShare, "new", w.NewShare, "weight of new posts")
	fs.Float64Var(&cfg.Workload.EditShare, "edit", w.EditShare, "weight of edits")
	fs.Float64Var(&cfg.Workload.RemoveShare, "remove", w.RemoveShare, "weight of removals")
	fs.Float64Var(&cfg.Workload.BurstShare, "burst", w.BurstShare, "chance an edit starts a burst of quick fixes to the same post")
	fs.IntVar(&cfg.Workload.BurstLen, "burst-len", w.BurstLen, "edits in a burst")
	fs.IntVar(&cfg.Workload.MinSize, "min-size", w.MinSize, "smallest post HTML, bytes")
	fs.IntVar(&cfg.Workload.MaxSize, "max-size", w.MaxSize, "largest post HTML, bytes (sizes are log-uniform between)")
	fs.Uint64Var(&seed, "seed", 1, "workload seed")
	fs.DurationVar(&cfg.Window, "batch-window", 25*time.Millisecond, settingHelp("LIVE_BATCH_WINDOW"))
	fs.IntVar(&cfg.Partitions, "partitions", 8, "stream partitions")
	fs.IntVar(&cfg.Concurrency, "publish-concurrency", 16, settingHelp("LIVE_PUBLISH_CONCURRENCY"))
	fs.DurationVar(&cfg.ProviderDelay, "provider-delay", 0, "added to every provider request (a provider across the internet)")
	fs.DurationVar(&cfg.Outage, "outage", 0, "the provider answers 500 for this long, from a quarter into the load (needs --rate)")
	fs.BoolVar(&cfg.Naive, "naive", false, "publish each event as its own provider call, without merging: the comparison")
	fs.StringVar(&cfg.Sync, "embedded-sync", config.SyncAlways, `the JetStream server's fsync policy: "always" or an interval such as 2m`)
	fs.BoolVar(&noYard, "no-yardstick", false, "skip measuring raw JetStream (its consume-and-ack rate in a backlog run, its publish→consume latency with --rate)")
	fs.BoolVarP(&verbose, "verbose", "v", false, "log progress to stderr")
	alias(fs, "window", "batch-window")
	alias(fs, "concurrency", "publish-concurrency")
	alias(fs, "sync", "embedded-sync")
	cmd.AddCommand(&cobra.Command{ // the benchmark's own JetStream server, a child process
		Use:    bench.ServeNATSArg + " DIR SYNC",
		Hidden: true,
		Args:   wantArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := bench.ServeNATS(c.ctx, args[0], args[1], c.stdout); err != nil {
				fmt.Fprintf(c.stderr, "%s %s: %v\n", name, bench.ServeNATSArg, err)
				return exit(1)
			}
			return nil
		},
	})
	return cmd
}

// settingHelp is the help of a setting of the settings table.
func settingHelp(env string) string {
	s, _ := config.Lookup(env)
	return s.Help
}

func runBench(ctx context.Context, cfg bench.Config, verbose bool, stdout, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "worker bench: %v\n", err)
		return 1
	}
	cfg.Worker = exe
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "worker bench: %v\n", err)
		return 2
	}
	log := zap.NewNop()
	if verbose {
		log, _ = zap.NewDevelopment()
	}
	rep, err := bench.Run(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "worker bench: %v\n", err)
		return 1
	}
	rep.Print(stdout)
	return 0
}
