package httpapi

import (
	"net/http"

	"github.com/klauspost/compress/gzhttp"
)

// CompressMinBytes is the smallest response body compressed: below about
// a kilobyte the gzip header and the CPU cost outweigh the bytes saved.
const CompressMinBytes = 1024

// compress gzips responses of at least CompressMinBytes for clients that
// send Accept-Encoding: gzip, and adds Vary: Accept-Encoding to every
// response. It uses github.com/klauspost/compress/gzhttp, which leaves
// alone bodies that already carry a Content-Encoding (no double
// compression), partial content and already-compressed media types, and
// responses without a body (204, 304, HEAD). Zstandard is off: gzip is
// what every client and proxy understands, and one encoding keeps caches
// simple. A request that does not accept gzip gets the ResponseWriter
// unwrapped, so its optional interfaces (io.ReaderFrom: sendfile for
// files) stay reachable.
func compress(next http.Handler) http.Handler {
	wrap, err := gzhttp.NewWrapper(gzhttp.MinSize(CompressMinBytes), gzhttp.EnableZstd(false))
	if err != nil {
		panic(err) // start-up invariant: the options are constants
	}
	gz := wrap(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !acceptsGzip(r.Header) {
			w.Header().Add("Vary", "Accept-Encoding")
			next.ServeHTTP(w, r)
			return
		}
		gz.ServeHTTP(w, r)
	})
}
