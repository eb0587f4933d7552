package pushersign

import (
	"crypto/hmac"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pusher/pusher-http-go/v5"
)

// A request signed by Pusher's official Go library passes the check, and one whose
// query was changed after signing does not.
func TestSignMatchesPushersLibrary(t *testing.T) {
	const secret = "7ad3773142a6692b25b8"
	checked := make(chan bool, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := ParseQuery(r.URL.RawQuery)
		if err != nil {
			t.Errorf("ParseQuery(%q): %v", r.URL.RawQuery, err)
		}
		want := Sign(secret, StringToSign(r.Method, r.URL.Path, q))
		checked <- hmac.Equal([]byte(q["auth_signature"]), []byte(want))
		q["auth_timestamp"] += "0"
		if Sign(secret, StringToSign(r.Method, r.URL.Path, q)) == q["auth_signature"] {
			t.Error("the signature still matches a changed auth_timestamp")
		}
		w.Write([]byte("{}"))
	}))
	defer srv.Close()
	c := pusher.Client{AppID: "3", Key: "278d425bdf160c739803", Secret: secret,
		Host: strings.TrimPrefix(srv.URL, "http://"), HTTPClient: srv.Client()}
	if err := c.Trigger("live-page", "live-page-update", map[string]any{"renders": map[string]any{}, "removals": []string{}}); err != nil {
		t.Fatalf("Trigger: %v", err)
	}
	if !<-checked {
		t.Fatal("the library's auth_signature is not Sign(secret, StringToSign(...))")
	}
}

func TestStringToSign(t *testing.T) {
	q := map[string]string{"auth_version": "1.0", "auth_key": "k", "auth_signature": "ignored", "body_md5": "a b&c"}
	got := StringToSign("POST", "/apps/3/events", q)
	want := "POST\n/apps/3/events\nauth_key=k&auth_version=1.0&body_md5=a b&c"
	if got != want {
		t.Fatalf("StringToSign = %q, want %q", got, want)
	}
}

func TestParseQuery(t *testing.T) {
	q, err := ParseQuery("Auth_Key=k&&body_md5=a%20b")
	if err != nil || len(q) != 2 || q["auth_key"] != "k" || q["body_md5"] != "a b" {
		t.Fatalf("ParseQuery = %v, %v", q, err)
	}
	for _, raw := range []string{"a=1&A=2", "a=%zz", "%zz=1"} {
		if _, err := ParseQuery(raw); err == nil {
			t.Errorf("ParseQuery(%q) succeeded", raw)
		}
	}
}
