package providertest

import (
	"io"
	"net/http"
	"testing"
)

// Do sends req with http.DefaultClient and reads the whole answer, failing t when
// either goes wrong. The response's body is closed; its bytes are returned.
func Do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}
