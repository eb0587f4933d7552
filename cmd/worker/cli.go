package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

const rootLong = `liverelay worker: carries Wagtail Live updates from NATS JetStream to browsers.

Without a command it runs the relay, as "worker run" does. Every command reads the same
settings, from LIVE_*, PUSHER_*, ABLY_* and PIESOCKET_* environment variables or from
flags of the same names ("worker run --help" lists them all); a flag wins.

Exit codes: 0 on success, 1 on a failure while running, 2 for a bad setting, flag or
argument, with a message naming it.`

// cli is what every command of the tree is built with: the context it runs under,
// the environment it reads, and where it writes.
type cli struct {
	ctx    context.Context
	env    env
	stdout io.Writer
	stderr io.Writer
}

// newRoot builds the command tree. "worker" alone runs the relay: the root takes the
// flags of "worker run", hidden from its help, which lists the commands.
func newRoot(ctx context.Context, e env, stdout, stderr io.Writer) *cobra.Command {
	c := cli{ctx: ctx, env: e, stdout: stdout, stderr: stderr}
	root := c.newRunCommand()
	root.Use = "worker"
	root.Short = "carry Wagtail Live updates from NATS JetStream to browsers"
	root.Long = rootLong
	root.Example = "  worker                       run the relay with the settings of the environment\n" +
		"  worker run --provider ably   the same, with a flag\n" +
		"  worker dlq list --since 2h   the dead letters of the last two hours"
	root.Flags().VisitAll(func(f *pflag.Flag) { f.Hidden = true })
	root.Args = func(_ *cobra.Command, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unknown command %q", args[0])
		}
		return nil
	}
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) { warnDeprecated(cmd, stderr) }
	root.SilenceErrors = true
	root.SilenceUsage = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })
	root.AddCommand(
		c.newRunCommand(),
		c.newEmitCommand(),
		c.newDLQCommand(),
		c.newReplayCommand(),
		c.newStatusCommand(),
		c.newHealthCommand(),
		c.newBenchCommand(),
		&cobra.Command{
			Use:   "version",
			Short: "print the version",
			Args:  wantArgs(0),
			Run:   func(*cobra.Command, []string) { fmt.Fprintln(stdout, "liverelay worker", version) },
		},
	)
	return root
}

// newCommand is a sub-command that takes nargs positional arguments and exits with
// run's code.
func newCommand(use, short, long string, nargs int, run func(args []string) int) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Long: long, Args: wantArgs(nargs),
		RunE: func(_ *cobra.Command, args []string) error { return exit(run(args)) },
	}
}

// checkedRun is the run of a command that reads the settings of the environment: it
// exits 2 naming what was wrong with them under name, before run does anything.
func (c cli) checkedRun(name string, run func() int) func(args []string) int {
	return func([]string) int {
		if !c.env.check(name, c.stderr) {
			return 2
		}
		return run()
	}
}

// wantArgs accepts exactly n positional arguments, and says so otherwise.
func wantArgs(n int) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		switch {
		case len(args) == n:
			return nil
		case n == 0:
			return fmt.Errorf("unexpected argument %q", args[0])
		default:
			return fmt.Errorf("want %d argument(s), got %d", n, len(args))
		}
	}
}

// alias registers old as a hidden name of the flag name, so that scripts written
// for an older flag keep working; warnDeprecated tells them the new name.
func alias(fs *pflag.FlagSet, old, name string) {
	f := fs.Lookup(name)
	fs.Var(f.Value, old, f.Usage)
	a := fs.Lookup(old)
	a.NoOptDefVal = f.NoOptDefVal
	a.Hidden = true
	_ = fs.SetAnnotation(old, aliasOf, []string{name})
}

const aliasOf = "liverelay-alias-of"

// warnDeprecated writes a warning on stderr for each old flag name used. (pflag's own
// deprecation notice would go where cobra prints help: stdout, which --json keeps
// for JSON.)
func warnDeprecated(cmd *cobra.Command, stderr io.Writer) {
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if name, ok := f.Annotations[aliasOf]; ok {
			fmt.Fprintf(stderr, "%s: --%s is deprecated; use --%s\n", cmd.CommandPath(), f.Name, name[0])
		}
	})
}

// longFlags rewrites the single-dash long flags Go's flag package accepted (-nats-url)
// to the double-dash form (--nats-url), for every name a command of the tree defines;
// anything after "--" is left alone.
func longFlags(root *cobra.Command, args []string) []string {
	names := map[string]bool{}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { names[f.Name] = true })
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if a == "--" {
			copy(out[i:], args[i:])
			break
		}
		name, _, _ := strings.Cut(a, "=")
		if len(name) > 2 && name[0] == '-' && name[1] != '-' && names[name[1:]] {
			out[i] = "-" + a
		}
	}
	return out
}
