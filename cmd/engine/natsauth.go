package main

import (
	"os"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go"
)

// natsAuth is how the engine authenticates to an external NATS, and the TLS
// it expects there. Credentials may also sit in NATS_URL
// (nats://user:password@host); either way they never reach a log or an
// error message.
type natsAuth struct {
	CredsFile      string // NATS_CREDS: a .creds file (JWT and nkey seed)
	User, Password string // NATS_USER, NATS_PASSWORD
	Token          string // NATS_TOKEN
	TLSCA          string // NATS_TLS_CA: PEM roots to verify the server; set to require TLS
	TLSCert        string // NATS_TLS_CERT and NATS_TLS_KEY: a client certificate
	TLSKey         string
}

func loadNATSAuth(getenv func(string) string) (natsAuth, error) {
	a := natsAuth{
		CredsFile: getenv("NATS_CREDS"), User: getenv("NATS_USER"), Password: getenv("NATS_PASSWORD"),
		Token: getenv("NATS_TOKEN"), TLSCA: getenv("NATS_TLS_CA"), TLSCert: getenv("NATS_TLS_CERT"), TLSKey: getenv("NATS_TLS_KEY"),
	}
	methods := 0
	for _, set := range []bool{a.CredsFile != "", a.User != "" || a.Password != "", a.Token != ""} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		return a, errors.WithHint(errors.New("more than one NATS authentication method is set"),
			"set only one of NATS_CREDS, NATS_USER/NATS_PASSWORD and NATS_TOKEN")
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		return a, errors.WithHint(errors.New("NATS_TLS_CERT and NATS_TLS_KEY go together"), "set both or neither")
	}
	for env, path := range map[string]string{"NATS_CREDS": a.CredsFile, "NATS_TLS_CA": a.TLSCA, "NATS_TLS_CERT": a.TLSCert, "NATS_TLS_KEY": a.TLSKey} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return a, errors.WithHint(errors.Wrapf(err, "%s", env), "point it at a readable file")
		}
	}
	return a, nil
}

// options are the nats.go options that apply a.
func (a natsAuth) options() []nats.Option {
	var opts []nats.Option
	switch {
	case a.CredsFile != "":
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	case a.User != "" || a.Password != "":
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	case a.Token != "":
		opts = append(opts, nats.Token(a.Token))
	}
	if a.TLSCA != "" {
		opts = append(opts, nats.RootCAs(a.TLSCA))
	}
	if a.TLSCert != "" {
		opts = append(opts, nats.ClientCert(a.TLSCert, a.TLSKey))
	}
	return opts
}
