// Package nginxtest renders the repository's nginx site config
// (compose/deploy/nginx/glasshouse.conf) for a test run of Debian's nginx:
// TLS files, logs and the ACME root move into a temporary prefix, the
// listeners onto loopback ports, and a main nginx.conf, the part a
// distribution provides around conf.d/, is written around the site.
//
// The tests of compose/ and the scale-out check in compose/scaleout run the
// same site this way; each adds its own edits (upstream servers, limits) as
// further replacements. Every replacement must apply, so a change to the
// site config that a test no longer understands fails loudly instead of
// leaving a production path or port in the test's config.
//
// It is test support and imports only the standard library.
package nginxtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Replacement is one literal edit of a config: every occurrence of Old
// becomes New, and Old must occur.
type Replacement struct {
	Old, New string
}

// Replace applies rs to conf in order. name is the config's path as the
// caller wants it named in the error, which names the first Old that conf
// does not contain.
func Replace(name, conf string, rs []Replacement) (string, error) {
	for _, r := range rs {
		if !strings.Contains(conf, r.Old) {
			return "", fmt.Errorf("%s no longer contains %q", name, r.Old)
		}
		conf = strings.ReplaceAll(conf, r.Old, r.New)
	}
	return conf, nil
}

// Run describes one nginx run on loopback.
type Run struct {
	// Prefix is the run's directory (nginx -p): it receives glasshouse.conf,
	// nginx.conf, the pid file and the logs/, tmp/ and acme/ directories.
	Prefix string
	// Cert and Key are the paths of the TLS certificate chain and its key.
	Cert, Key string
	// HTTPPort and HTTPSPort are the 127.0.0.1 ports of the two listeners.
	HTTPPort, HTTPSPort int

	// Workers is worker_processes and WorkerConnections is the events
	// block's worker_connections.
	Workers, WorkerConnections int
	// AccessLog writes the access log to Prefix/logs/access.log; false
	// turns it off.
	AccessLog bool
}

// Loopback returns the replacements that map glasshouse.conf's deployment
// paths and ports into the run: certificate and key, log directory, ACME
// root, and the IPv4 listeners on 127.0.0.1. The IPv6 listeners are
// removed, because a test machine may have no IPv6 loopback.
func (r Run) Loopback() []Replacement {
	return []Replacement{
		{"/etc/ssl/glasshouse/fullchain.pem", r.Cert},
		{"/etc/ssl/glasshouse/privkey.pem", r.Key},
		{"/var/log/nginx/", r.Prefix + "/logs/"},
		{"root /var/www/acme;", "root " + r.Prefix + "/acme;"},
		{"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", r.HTTPPort)},
		{"listen 443 ssl http2;", fmt.Sprintf("listen 127.0.0.1:%d ssl http2;", r.HTTPSPort)},
		{"listen [::]:80;", ""},
		{"listen [::]:443 ssl http2;", ""},
	}
}

// Write writes site (a rendered site config) to Prefix/glasshouse.conf and
// the main config that includes it to Prefix/nginx.conf, creates the
// directories the main config names, and returns the main config's path,
// the one to pass to nginx -c.
func (r Run) Write(site string) (string, error) {
	sitePath := filepath.Join(r.Prefix, "glasshouse.conf")
	if err := os.WriteFile(sitePath, []byte(site), 0o644); err != nil {
		return "", err
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;" // workers must read the test's 0700 temp dirs
	}
	accessLog := "off"
	if r.AccessLog {
		accessLog = r.Prefix + "/logs/access.log"
	}
	main := fmt.Sprintf(`%[1]s
worker_processes %[2]d;
daemon off;
pid %[3]s/nginx.pid;
error_log %[3]s/logs/error.log warn;
events { worker_connections %[4]d; }
http {
    types { application/json json; text/html html; }
    default_type application/octet-stream;
    client_body_temp_path %[3]s/tmp/body;
    proxy_temp_path %[3]s/tmp/proxy;
    fastcgi_temp_path %[3]s/tmp/fastcgi;
    uwsgi_temp_path %[3]s/tmp/uwsgi;
    scgi_temp_path %[3]s/tmp/scgi;
    access_log %[5]s;
    include %[6]s;
}
`, user, r.Workers, r.Prefix, r.WorkerConnections, accessLog, sitePath)
	mainPath := filepath.Join(r.Prefix, "nginx.conf")
	if err := os.WriteFile(mainPath, []byte(main), 0o644); err != nil {
		return "", err
	}
	for _, d := range []string{"logs", "tmp", "acme"} {
		if err := os.MkdirAll(filepath.Join(r.Prefix, d), 0o755); err != nil {
			return "", err
		}
	}
	return mainPath, nil
}
