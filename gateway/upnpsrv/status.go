package upnpsrv

import (
	"context"
	"net/http"
	"strings"
)

// StatusPath is where Config.StatusPage is served: the path itself and
// every path under it.
const StatusPath = "/status"

func isStatusPath(p string) bool {
	return p == StatusPath || strings.HasPrefix(p, StatusPath+"/")
}

// serveStatus hands r to Config.StatusPage with a context that also ends
// when Shutdown begins: http.Server.Shutdown waits for the requests in
// progress, and an event stream would never end by itself.
func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	s.cfg.StatusPage.ServeHTTP(w, r.WithContext(ctx))
}
