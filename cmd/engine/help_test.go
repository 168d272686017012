package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestEverySubcommandHelpPrintsItsUsageAndSucceeds(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"serve", "verify", "export", "rebuild", "bench", "demo"} {
		for _, h := range []string{"-h", "--help", "-help"} {
			t.Run(cmd+" "+h, func(t *testing.T) {
				t.Parallel()
				// Were -h ignored, the subcommand would start for real: on a
				// scratch directory, and for a few seconds at most.
				env := map[string]string{"ENGINE_DATA_DIR": t.TempDir(), "ENGINE_HTTP_ADDR": "127.0.0.1:0"}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				var stdout, stderr bytes.Buffer
				err := run(ctx, []string{cmd, h}, func(k string) string { return env[k] }, &stdout, &stderr)
				if err != nil {
					t.Errorf("run(%s %s) = %v, want nil", cmd, h, err)
				}
				if want := "usage: engine " + cmd; !strings.HasPrefix(stdout.String(), want) {
					t.Errorf("stdout %q does not start with %q", stdout.String(), want)
				}
				// The paragraph of the top-level usage that describes it.
				if !strings.Contains(stdout.String(), "\n  "+cmd+" ") {
					t.Errorf("stdout lacks the description of %s:\n%s", cmd, stdout.String())
				}
				if stderr.Len() > 0 {
					t.Errorf("stderr: %q, want nothing", stderr.String())
				}
			})
		}
	}
}

func TestSubcommandFlagsListedInHelp(t *testing.T) {
	t.Parallel()
	for cmd, flag := range map[string]string{"export": "-from-seq", "bench": "-scenario", "demo": "-rate"} {
		env := map[string]string{"ENGINE_DATA_DIR": t.TempDir(), "ENGINE_HTTP_ADDR": "127.0.0.1:0"}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		var stdout bytes.Buffer
		err := run(ctx, []string{cmd, "-h"}, func(k string) string { return env[k] }, &stdout, &bytes.Buffer{})
		cancel()
		if err != nil {
			t.Fatalf("%s -h: %v", cmd, err)
		}
		if !strings.Contains(stdout.String(), "\nflags:\n") || !strings.Contains(stdout.String(), flag) {
			t.Errorf("%s -h does not list its flag %s:\n%s", cmd, flag, stdout.String())
		}
	}
}

func TestSubcommandBadFlagFailsWithUsageOnStderr(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"export", "-nope"}, {"verify", "extra"}, {"serve", "-x"}, {"rebuild", "main", "more"}, {"demo", "-rate"}} {
		env := map[string]string{"ENGINE_DATA_DIR": t.TempDir(), "ENGINE_HTTP_ADDR": "127.0.0.1:0"}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		var stdout, stderr bytes.Buffer
		err := run(ctx, args, func(k string) string { return env[k] }, &stdout, &stderr)
		cancel()
		if err == nil {
			t.Errorf("run(%q) = nil, want an error", args)
		}
		if stdout.Len() > 0 || !strings.HasPrefix(stderr.String(), "usage: engine "+args[0]) {
			t.Errorf("run(%q): stdout %q, stderr %q; want the usage on stderr only", args, stdout.String(), stderr.String())
		}
	}
}
