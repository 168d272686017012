package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/internal/httpx"
)

// adminTokenFile, under ENGINE_DATA_DIR, keeps the SHA-256 of the admin
// token generated when ENGINE_API_TOKENS is not set, so links and scripts
// made with it keep working across restarts. The token itself is printed
// once and kept nowhere: whoever can read the data directory cannot use it.
const adminTokenFile = "admin-token.sha256"

// loadTokens parses ENGINE_API_TOKENS or, when none is configured, accepts
// the admin token whose digest dataDir keeps: on the first start it makes
// one, prints it once and keeps its digest; later starts say how to rotate
// it (remove the file and restart).
func loadTokens(spec, dataDir string, stdout io.Writer) (*httpx.Tokens, error) {
	if spec != "" {
		return httpx.ParseTokens(spec)
	}
	path := filepath.Join(dataDir, adminTokenFile)
	kept, err := os.ReadFile(path)
	switch {
	case err == nil:
		var d [32]byte
		if n, err := hex.Decode(d[:], bytes.TrimSpace(kept)); err != nil || n != len(d) {
			return nil, errors.WithHint(errors.Newf("%s does not hold a SHA-256 digest", path),
				"remove it and restart to generate a new admin token, or set ENGINE_API_TOKENS")
		}
		_, _ = fmt.Fprintf(stdout, "ENGINE_API_TOKENS is not set; accepting the admin token printed at this data directory's first start "+
			"(only its SHA-256 is kept, in %s); to rotate it, remove that file and restart: a new one is printed\n", path)
		return httpx.AdminTokenDigest(d), nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, errors.Wrapf(err, "read the admin token's digest")
	}
	if err := os.MkdirAll(dataDir, 0o711); err != nil {
		return nil, errors.Wrapf(err, "create ENGINE_DATA_DIR %s", dataDir)
	}
	tok, tokens := httpx.GenerateAdminToken()
	d := httpx.TokenDigest(tok)
	// O_EXCL: of two first starts racing, one keeps its digest and the
	// other fails instead of printing a token that no longer works.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, errors.Wrapf(err, "keep the admin token's digest")
	}
	_, err = f.WriteString(hex.EncodeToString(d[:]) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return nil, errors.Wrapf(err, "keep the admin token's digest in %s", path)
	}
	_, _ = fmt.Fprintf(stdout, "ENGINE_API_TOKENS is not set; generated admin token (shown once): %s\n", tok)
	_, _ = fmt.Fprintf(stdout, "  it is kept across restarts (only its SHA-256, in %s); to rotate it, remove that file and restart\n", path)
	return tokens, nil
}
