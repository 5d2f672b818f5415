package statuspage

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/portlease/portlease/gateway"
)

const testToken = "0123456789abcdefXYZ"

func post(h http.Handler, token, contentType, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "http://198.51.100.1:5000"+DeletePath, strings.NewReader(body))
	if token != "" {
		r.Header.Set(TokenHeader, token)
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestDeleteRefused: without admin, or without the right token, a deletion
// is refused with 403 and the table is not asked; with admin off the
// snapshot does not offer it.
func TestDeleteRefused(t *testing.T) {
	const body = `{"what":"lease","proto":"tcp","externalPort":8080}`
	f := newFake()
	f.leases = []gateway.Lease{leaseTCP}
	readOnly := newHandler(t, Config{Table: f})
	if w := post(readOnly, testToken, "application/json", body); w.Code != http.StatusForbidden {
		t.Errorf("deletion with admin off: %d; want 403", w.Code)
	}
	if s := get(readOnly, SnapshotPath).Body.String(); !strings.Contains(s, `"admin":false`) {
		t.Errorf("snapshot with admin off: %s", s)
	}
	admin := newHandler(t, Config{Table: f, Admin: true, Token: testToken})
	for _, token := range []string{"", "wrong", testToken[:len(testToken)-1], testToken + "x"} {
		if w := post(admin, token, "application/json", body); w.Code != http.StatusForbidden {
			t.Errorf("deletion with token %q: %d; want 403", token, w.Code)
		}
	}
	if d := f.deletions(); len(d) != 0 {
		t.Errorf("refused deletions reached the table: %q", d)
	}
	if s := get(admin, SnapshotPath).Body.String(); !strings.Contains(s, `"admin":true`) {
		t.Errorf("snapshot with admin on: %s", s)
	}
	w := httptest.NewRecorder()
	admin.ServeHTTP(w, httptest.NewRequest(http.MethodGet, DeletePath, nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET %s: %d; want 405", DeletePath, w.Code)
	}
}

// TestDelete: with admin on and the token, a lease, a pinhole and all of a
// host's leases are deleted through the table; requests that name nothing
// are refused.
func TestDelete(t *testing.T) {
	f := newFake()
	f.leases = []gateway.Lease{leaseTCP, leaseUDP, leaseUPnP, pinhole}
	h := newHandler(t, Config{Table: f, Admin: true, Token: testToken})
	for _, tc := range []struct {
		contentType, body string
		want              int
		deletion          []string
	}{
		{"application/json", `{"what":"lease","proto":"tcp","externalPort":8080}`, http.StatusOK, []string{"external tcp 8080"}},
		{"application/json", `{"what":"lease","proto":"tcp","externalPort":8080}`, http.StatusNotFound, []string{"external tcp 8080"}},
		{"application/json; charset=utf-8", `{"what":"pinhole","pinholeId":3}`, http.StatusOK, []string{"pinhole 3"}},
		{"application/json", `{"what":"host","host":"198.51.100.2"}`, http.StatusOK, []string{"host 198.51.100.2"}},
		{"application/json", `{"what":"lease","proto":"sctp","externalPort":1}`, http.StatusBadRequest, nil},
		{"application/json", `{"what":"pinhole","pinholeId":0}`, http.StatusBadRequest, nil},
		{"application/json", `{"what":"host","host":"router"}`, http.StatusBadRequest, nil},
		{"application/json", `{"what":"everything"}`, http.StatusBadRequest, nil},
		{"application/json", `{"what":"lease","extra":1}`, http.StatusBadRequest, nil},
		{"application/json", `not json`, http.StatusBadRequest, nil},
		{"application/x-www-form-urlencoded", `{"what":"pinhole","pinholeId":3}`, http.StatusUnsupportedMediaType, nil},
	} {
		before := len(f.deletions())
		w := post(h, testToken, tc.contentType, tc.body)
		if w.Code != tc.want {
			t.Errorf("POST %s (%s): %d %s; want %d", tc.body, tc.contentType, w.Code, w.Body, tc.want)
		}
		if got := f.deletions()[before:]; !slices.Equal(got, tc.deletion) {
			t.Errorf("POST %s: the table was asked %q; want %q", tc.body, got, tc.deletion)
		}
	}
	var left []string
	for _, l := range f.Leases() {
		left = append(left, l.Internal.String())
	}
	if want := []string{"198.51.100.3:53"}; !slices.Equal(left, want) {
		t.Errorf("leases left %q; want %q", left, want)
	}
}
