package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/cockroachdb/errors"
)

// errHelped is what parseFlags returns once it has printed the usage
// asked for with -h: the subcommand then ends with exit code 0.
var errHelped = errors.New("help shown")

// synopses are the first line of each subcommand's -h.
var synopses = map[string]string{
	"serve":   "engine serve",
	"verify":  "engine verify",
	"export":  "engine export [flags]",
	"rebuild": "engine rebuild NAME",
	"bench":   "engine bench [flags]",
	"demo":    "engine demo [flags]",
}

// parseFlags parses subcommand name's flags (a FlagSet without flags still
// understands -h). Asked for -h, -help or --help, it prints the
// subcommand's usage and flags on stdout and returns errHelped; a bad flag
// gets the same usage on stderr and the flag package's error. It also
// refuses more positional arguments than maxArgs.
func parseFlags(fs *flag.FlagSet, name string, args []string, maxArgs int, stdout, stderr io.Writer) error {
	fs.Usage = func() { printUsage(fs, name) }
	// The flag package prints before it returns; where to is decided after.
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return errHelped
	case err != nil:
		fs.SetOutput(stderr)
		fs.Usage()
		return err
	case fs.NArg() > maxArgs:
		fs.SetOutput(stderr)
		fs.Usage()
		return errors.Newf("engine %s: unexpected argument %q", name, fs.Arg(maxArgs))
	}
	fs.SetOutput(stderr)
	return nil
}

// printUsage writes subcommand name's synopsis, its paragraph of the
// top-level usage, and its flags, if any, to fs's output.
func printUsage(fs *flag.FlagSet, name string) {
	w := fs.Output()
	_, _ = fmt.Fprintf(w, "usage: %s\n\n%s", synopses[name], usageOf(name))
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		_, _ = fmt.Fprint(w, "\nflags:\n")
		fs.PrintDefaults()
	}
}

// usageOf cuts subcommand name's paragraph out of the top-level usage, so
// the two never say different things: it starts at the line naming the
// subcommand and runs over the more indented lines after it.
func usageOf(name string) string {
	var b strings.Builder
	in := false
	for line := range strings.Lines(usage) {
		head := strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ")
		if head {
			in = strings.HasPrefix(line, "  "+name+" ")
		}
		if in {
			b.WriteString(line)
		}
	}
	return b.String()
}

// helped turns parseFlags' errHelped into nil (the usage asked for is
// printed: exit code 0) and returns any other error as it is.
func helped(err error) error {
	if errors.Is(err, errHelped) {
		return nil
	}
	return err
}
