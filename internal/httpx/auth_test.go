package httpx

import (
	"strings"
	"testing"
)

func TestParseTokens(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, spec string
		// wantErr are substrings of the error; none means success.
		wantErr []string
	}{
		{name: "valid entries", spec: "a:client, b:viewer,c:auditor,d:admin,"},
		{name: "unknown role is named with the valid ones", spec: "a:admin,t:superuser",
			wantErr: []string{"entry 2", `"superuser"`, "client, viewer, auditor, admin"}},
		{name: "missing role", spec: "t", wantErr: []string{"entry 1 is not token:role"}},
		{name: "empty token", spec: ":admin", wantErr: []string{"entry 1 is not token:role"}},
		{name: "token listed twice is refused", spec: "t:viewer,u:client,t:admin",
			wantErr: []string{"entry 3 repeats the token of entry 1"}},
		{name: "token listed twice with one role is refused too", spec: "t:admin,t:admin",
			wantErr: []string{"entry 2 repeats"}},
		{name: "nothing", spec: " , ", wantErr: []string{"holds no token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tokens, err := ParseTokens(tc.spec)
			if len(tc.wantErr) == 0 {
				if err != nil || tokens == nil {
					t.Fatalf("ParseTokens(%q) = %v, %v; want tokens", tc.spec, tokens, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseTokens(%q) accepted it; want an error with %q", tc.spec, tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseTokens(%q) error %q lacks %q", tc.spec, err, w)
				}
			}
			// The token itself is a secret: never in the message.
			if strings.Contains(err.Error(), "t:") {
				t.Errorf("error %q shows a token", err)
			}
		})
	}
}
