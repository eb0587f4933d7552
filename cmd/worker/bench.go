package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/bench"
	"github.com/liverelay/liverelay/internal/workload"
)

// benchCommand runs a complete local measurement: see docs/benchmarks.md.
func benchCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == bench.ServeNATSArg { // the benchmark's own JetStream server
		if len(args) != 3 {
			fmt.Fprintf(stderr, "usage: worker bench %s DIR SYNC\n", bench.ServeNATSArg)
			return 2
		}
		if err := bench.ServeNATS(ctx, args[1], args[2], stdout); err != nil {
			fmt.Fprintf(stderr, "worker bench %s: %v\n", bench.ServeNATSArg, err)
			return 1
		}
		return 0
	}
	fs := flag.NewFlagSet("worker bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	w := workload.Default()
	cfg := bench.Config{Workload: w}
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
	seed := fs.Uint64("seed", 1, "workload seed")
	fs.DurationVar(&cfg.Window, "window", 25*time.Millisecond, "the worker's merge window")
	fs.IntVar(&cfg.Partitions, "partitions", 8, "stream partitions")
	fs.IntVar(&cfg.Concurrency, "concurrency", 16, "provider requests in flight")
	fs.DurationVar(&cfg.ProviderDelay, "provider-delay", 0, "added to every provider request (a provider across the internet)")
	fs.DurationVar(&cfg.Outage, "outage", 0, "the provider answers 500 for this long, from a quarter into the load (needs --rate)")
	fs.BoolVar(&cfg.Naive, "naive", false, "publish each event as its own provider call, without merging: the comparison")
	fs.StringVar(&cfg.Sync, "sync", "always", `the JetStream server's fsync policy: "always" or an interval such as 2m`)
	noYard := fs.Bool("no-yardstick", false, "skip measuring raw JetStream (its consume-and-ack rate in a backlog run, its publish→consume latency with --rate)")
	verbose := fs.Bool("v", false, "log progress to stderr")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: worker bench [flags]\n\nRuns JetStream and the worker (each as a child process), a live-blog load and a Pusher-like provider locally, and reports.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg.Workload.Seed = *seed
	cfg.Yardstick = !*noYard
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
	if *verbose {
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
