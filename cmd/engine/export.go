package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/eventstore"
)

// exportLine is one line of `engine export`, the same shape as
// GET /v1/audit/export.
type exportLine struct {
	// Shard is the shard whose stream Seq counts in; absent for shard 0,
	// so that a one-shard store exports what it always has.
	Shard   int    `json:"shard,omitempty"`
	Seq     uint64 `json:"seq"`
	Subject string `json:"subject"`
	eventstore.Envelope
}

// export runs `engine export`: every event in store order as NDJSON, read
// page by page and written as it is read, so memory stays flat whatever the
// size of the store. Progress goes to stderr, the events to stdout or -o.
// With the embedded server it takes ENGINE_DATA_DIR's lock, as verify does.
func export(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	out := fs.String("o", "", "write to this file instead of stdout")
	from := fs.Uint64("from-seq", 1, "first stream sequence")
	to := fs.Uint64("to-seq", 0, "last stream sequence (0: the end)")
	if err := parseFlags(fs, "export", args, 0, stdout, stderr); err != nil {
		return helped(err)
	}
	if *to != 0 && *to < *from {
		return errors.Newf("-to-seq %d is below -from-seq %d", *to, *from)
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	if cfg.NATSURL == "" {
		lock, err := claimDataDir(cfg.DataDir, "engine export")
		if err != nil {
			return err
		}
		defer lock.release()
	}
	store, closeStore, err := openStore(ctx, cfg, "engine export")
	if err != nil {
		return err
	}
	defer closeStore()

	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return errors.Wrapf(err, "create %s", *out)
		}
		defer func() { _ = f.Close() }()
		w = f
	}
	buf := bufio.NewWriterSize(w, 1<<20)
	enc := json.NewEncoder(buf)
	bar := newProgressLine(stderr, time.Now(), "exporting: %d events written")
	var n uint64
	err = store.Export(ctx, *from, *to, func(pos eventstore.Position, subject string, e eventstore.Envelope) error {
		n++
		bar.update(n)
		return enc.Encode(exportLine{Shard: pos.Shard, Seq: pos.Seq, Subject: subject, Envelope: e})
	})
	bar.finish()
	if err != nil {
		return errors.Wrap(err, "export")
	}
	if err := buf.Flush(); err != nil {
		return errors.Wrap(err, "write the export")
	}
	_, _ = fmt.Fprintf(stderr, "exported %d events\n", n)
	return nil
}
