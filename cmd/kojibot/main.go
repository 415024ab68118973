// Command kojibot is the ChatOps bot for a Koji build farm's operators: it
// runs in the ops IRC channel (run), validates its configuration
// (check-config), runs one command locally when IRC is down (exec) and
// prints its version (version). This file only wires the packages together.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/fedora-infra/kojibot/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

// exitError carries the exit code a verb wants.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	root := newRoot(os.Stdin, os.Stdout, os.Stderr)
	err := root.Execute()
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	default:
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
}

// newRoot builds the command tree, writing to the given streams.
func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	var configPath string
	root := &cobra.Command{
		Use:           "kojibot",
		Short:         "ChatOps bot for the operators of a Koji build farm",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&configPath, "config", "/etc/kojibot/kojibot.yaml", "configuration file")

	root.AddCommand(&cobra.Command{
		Use:   "run",
		Short: "run the bot",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configPath, stderr)
			if err != nil {
				return exitError{1}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runBot(ctx, cfg, stderr)
		},
	})
	var probe bool
	checkCmd := &cobra.Command{
		Use:   "check-config [--probe]",
		Short: "validate the configuration and name every problem",
		Long: "check-config validates the configuration offline. With --probe it also connects to the\n" +
			"Koji database and checks every privilege the configured commands need, and koji.user;\n" +
			"logs in to the Koji hub (koji.hub.url) and checks the bot's permissions and proxy login;\n" +
			"and logs in to every hosts entry, where ssh.helper must run and allow what the\n" +
			"configuration asks of that machine (its services, cleanup dirs, xen config dir).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configPath, stderr)
			if err != nil {
				return exitError{1}
			}
			stateErrs, stateWarns := cfg.CheckStateDir()
			if len(stateErrs) > 0 {
				fmt.Fprintf(stderr, "%s: invalid configuration:\n", configPath)
				for _, e := range stateErrs {
					fmt.Fprintln(stderr, "  -", e)
				}
				return exitError{1}
			}
			for _, w := range append(configWarnings(cfg), stateWarns...) {
				fmt.Fprintln(stderr, "warning:", w)
			}
			fmt.Fprintf(stdout, "%s: configuration is valid\n", configPath)
			if probe {
				code := runProbe(cmd.Context(), cfg, stdout, stderr)
				if c := runHubProbe(cmd.Context(), cfg, stdout, stderr); c != 0 {
					code = c
				}
				if c := runSSHProbe(cmd.Context(), cfg, stdout, stderr); c != 0 {
					code = c
				}
				if c := runStateProbe(cmd.Context(), cfg, stdout, stderr); c != 0 {
					code = c
				}
				if c := runMessagingProbe(cmd.Context(), cfg, stdout, stderr); c != 0 {
					code = c
				}
				if code != 0 {
					return exitError{code}
				}
			}
			return nil
		},
	}
	checkCmd.Flags().BoolVar(&probe, "probe", false, "also connect to the Koji database and every host, and check the privileges")
	root.AddCommand(checkCmd)
	var as string
	var yes bool
	execCmd := &cobra.Command{
		Use:   "exec --as <fas-user> [--yes] -- <command> [args...]",
		Short: "run one command locally as a FAS user, printing the replies",
		Long: "exec runs one command without IRC, with the given FAS user's groups.\n" +
			"Exit status: 0 done, 1 error:, 3 denied:, 2 usage error of exec itself.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if as == "" || len(args) == 0 {
				fmt.Fprintln(stderr, "usage: kojibot exec --as <fas-user> [--yes] -- <command> [args...]")
				return exitError{2}
			}
			cfg, err := loadConfig(configPath, stderr)
			if err != nil {
				return exitError{2}
			}
			// SIGINT/SIGTERM cancel the job, which restores what it
			// stopped; exec then exits 130 or 143.
			ctx, caught, stop := signalContext(cmd.Context(), stderr)
			defer stop()
			code := runExec(ctx, cfg, as, yes, args, stdin, stdout, stderr)
			if s := caught(); s != nil {
				return exitError{signalExit(s)}
			}
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
	execCmd.Flags().StringVar(&as, "as", "", "the FAS user whose groups apply")
	execCmd.Flags().BoolVar(&yes, "yes", false, "answer confirmations with yes (for scripts)")
	root.AddCommand(execCmd)
	root.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "print the leader, the standbys, the term and the open journal records (read-only)",
		Long: "status reads the state store (state.dsn, else state.dir) and prints which kojibot\n" +
			"process leads, since when and in which term, the standbys waiting to take over, other\n" +
			"processes (exec), and the open journal records. It changes nothing.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configPath, stderr)
			if err != nil {
				return exitError{1}
			}
			if code := runStatus(cmd.Context(), cfg, stdout, stderr); code != 0 {
				return exitError{code}
			}
			return nil
		},
	})
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(stdout, "kojibot", versionString())
		},
	})
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		fmt.Fprintln(stderr, "error:", err)
		return exitError{2}
	})
	return root
}

// versionString is the ldflags version, else the module's build info.
func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		return v
	}
	return "unknown"
}

// loadConfig loads and validates the configuration, printing every problem.
func loadConfig(path string, stderr io.Writer) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err == nil {
		err = validate(cfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration:\n", path)
		for _, line := range splitErrors(err) {
			fmt.Fprintln(stderr, "  -", line)
		}
		return nil, err
	}
	return cfg, nil
}

// splitErrors flattens an errors.Join tree into its messages.
func splitErrors(err error) []string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, splitErrors(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// newLogger builds the JSON logger for the audit and operational log.
func newLogger(cfg config.Log, stderr io.Writer) (*slog.Logger, io.Closer, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Level)); err != nil {
		return nil, nil, fmt.Errorf("log.level: %w", err)
	}
	w, closer := stderr, io.Closer(io.NopCloser(nil))
	if cfg.File != "" {
		f, err := os.OpenFile(cfg.File, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("log.file: %w", err)
		}
		w, closer = f, f
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})), closer, nil
}
