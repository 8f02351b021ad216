package stack

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Container paths the compose stack mounts. The native stack maps them to
// host directories; compose/compose_test.go checks compose.yaml uses exactly
// these.
const (
	// ContainerAlertsDir is where compose mounts the repository's alerts/
	// folder in the Prometheus and Alertmanager containers.
	ContainerAlertsDir = "/etc/glasshouse/alerts"
	// ContainerSecretsDir holds the Slack webhook URL file Alertmanager reads
	// (where compose mounts secrets by default).
	ContainerSecretsDir = "/run/secrets"
	// SlackWebhookFile is the file name of that secret.
	SlackWebhookFile = "slack_webhook_url"
)

// Mapping says how names valid inside the compose network translate to the
// native stack.
type Mapping struct {
	// Targets maps "host:port" as the compose configs write it (service name
	// and container port) to the native listen address.
	Targets map[string]string
	// Dirs maps container directories to host directories; the longest
	// matching prefix wins.
	Dirs map[string]string
	// TargetsDir holds file-based service discovery. A job that compose finds
	// by DNS (a service that runs only sometimes, such as the load generator)
	// reads its targets from TargetsDir/<job>/*.json in the native stack;
	// whatever runs that service writes a file there while it runs (see
	// RunLoad), so Prometheus shows no target, rather than a down one, when
	// it does not run.
	TargetsDir string
}

// Mapping returns the translation for c: every compose service address the
// Prometheus and Alertmanager configs may name, and the two mount points.
func (c Config) Mapping() Mapping {
	return Mapping{
		Targets: map[string]string{
			"api:8080":          c.addr(c.APIPort),
			"api:8081":          c.addr(c.APIAdminPort),
			"localhost:9090":    c.addr(c.PrometheusPort),
			"prometheus:9090":   c.addr(c.PrometheusPort),
			"alertmanager:9093": c.addr(c.AlertmanagerPort),
			"slacksink:9095":    c.addr(c.SlackSinkPort),
			"loadgen:9096":      c.addr(c.LoadPort),
		},
		Dirs: map[string]string{
			ContainerAlertsDir:  filepath.Join(c.RepoDir, "alerts"),
			ContainerSecretsDir: filepath.Join(c.RunDir, "alertmanager", "secrets"),
		},
		TargetsDir: c.targetsDir(),
	}
}

// target maps one "host:port".
func (m Mapping) target(hostport string) (string, bool) {
	t, ok := m.Targets[hostport]
	return t, ok
}

// path maps an absolute container path through Dirs. ok is false when no
// mount point covers it.
func (m Mapping) path(p string) (string, bool) {
	best := ""
	for dir := range m.Dirs {
		if (p == dir || strings.HasPrefix(p, dir+"/")) && len(dir) > len(best) {
			best = dir
		}
	}
	if best == "" {
		return p, false
	}
	return m.Dirs[best] + strings.TrimPrefix(p, best), true
}

// RenderPrometheus rewrites a compose Prometheus config for the native stack:
// static targets become loopback addresses, DNS discovery becomes file-based
// discovery under m.TargetsDir, and rule file globs point at the host
// directories the containers would mount. A target or
// rule path it cannot translate is an error, so adding a container-only
// target to the config forces a decision here.
func RenderPrometheus(src []byte, m Mapping) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("parse prometheus config: %w", err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("prometheus config: want a YAML mapping at the top level")
	}
	root := doc.Content[0]
	var errs []error

	if rf := lookup(root, "rule_files"); rf != nil {
		for _, n := range rf.Content {
			p, ok := m.path(n.Value)
			if !ok {
				errs = append(errs, fmt.Errorf("rule_files: %q is outside every mounted directory (%s)", n.Value, strings.Join(sortedKeys(m.Dirs), ", ")))
				continue
			}
			n.Value = p
		}
	}
	if al := lookup(root, "alerting"); al != nil {
		for _, am := range seq(lookup(al, "alertmanagers")) {
			errs = append(errs, rewriteStatic(am, m, "alerting.alertmanagers")...)
		}
	}
	for _, sc := range seq(lookup(root, "scrape_configs")) {
		job := "?"
		if j := lookup(sc, "job_name"); j != nil {
			job = j.Value
		}
		where := fmt.Sprintf("scrape_configs[%s]", job)
		for i := 0; i+1 < len(sc.Content); i += 2 {
			if k := sc.Content[i].Value; strings.HasSuffix(k, "_sd_configs") && k != "dns_sd_configs" {
				errs = append(errs, fmt.Errorf("%s: %s cannot be translated to the native stack", where, k))
			}
		}
		errs = append(errs, dnsToFileSD(sc, m, job, where)...)
		errs = append(errs, rewriteStatic(sc, m, where)...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return encode(&doc, "compose/prometheus/prometheus.yml")
}

// rewriteStatic maps every target of parent's static_configs.
func rewriteStatic(parent *yaml.Node, m Mapping, where string) []error {
	var errs []error
	for _, sc := range seq(lookup(parent, "static_configs")) {
		for _, t := range seq(lookup(sc, "targets")) {
			nt, ok := m.target(t.Value)
			if !ok {
				errs = append(errs, fmt.Errorf("%s: target %q has no native address (known: %s)", where, t.Value, strings.Join(sortedKeys(m.Targets), ", ")))
				continue
			}
			t.Value = nt
		}
	}
	return errs
}

// dnsToFileSD replaces dns_sd_configs (how compose finds optional services)
// with file_sd_configs reading m.TargetsDir/<job>/*.json, keeping the job's
// other settings. Every DNS name must still have a native address, so a new
// optional service forces a decision in Config.Mapping.
func dnsToFileSD(sc *yaml.Node, m Mapping, job, where string) []error {
	var errs []error
	for i := 0; i+1 < len(sc.Content); i += 2 {
		if sc.Content[i].Value != "dns_sd_configs" {
			continue
		}
		for _, d := range seq(sc.Content[i+1]) {
			port := "80"
			if p := lookup(d, "port"); p != nil {
				port = p.Value
			}
			for _, name := range seq(lookup(d, "names")) {
				if hp := net.JoinHostPort(name.Value, port); !m.hasTarget(hp) {
					errs = append(errs, fmt.Errorf("%s: DNS name %q has no native address", where, hp))
				}
			}
		}
		if m.TargetsDir == "" {
			errs = append(errs, fmt.Errorf("%s: dns_sd_configs needs a targets directory for file-based discovery", where))
		}
		sc.Content[i].Value = "file_sd_configs"
		sc.Content[i+1] = &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{
			{Kind: yaml.MappingNode, Content: []*yaml.Node{
				scalar("files"),
				{Kind: yaml.SequenceNode, Content: []*yaml.Node{scalar(filepath.Join(m.TargetsDir, job, "*.json"))}},
				scalar("refresh_interval"), scalar("5s"),
			}},
		}}
	}
	return errs
}

func (m Mapping) hasTarget(hostport string) bool {
	_, ok := m.target(hostport)
	return ok
}

// RenderAlertmanager rewrites a compose Alertmanager config for the native
// stack: URLs naming a compose service (the Slack sink) point at its loopback
// address, and file references (the Slack webhook URL file, templates) point
// at host paths. srcDir is the directory of the original file, against which
// Alertmanager resolves relative paths; the rendered copy lives elsewhere, so
// they are made absolute.
func RenderAlertmanager(src []byte, m Mapping, srcDir string) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("parse alertmanager config: %w", err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("alertmanager config: want a YAML mapping at the top level")
	}
	var errs []error
	filePath := func(n *yaml.Node, key string) {
		switch {
		case n.Value == "":
		case filepath.IsAbs(n.Value):
			p, ok := m.path(n.Value)
			if !ok {
				errs = append(errs, fmt.Errorf("%s: %q is not under a mounted directory (%s)", key, n.Value, strings.Join(sortedKeys(m.Dirs), ", ")))
				return
			}
			n.Value = p
		default:
			n.Value = filepath.Join(srcDir, n.Value)
		}
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i].Value, n.Content[i+1]
				switch {
				case strings.HasSuffix(k, "_file") && v.Kind == yaml.ScalarNode:
					filePath(v, k)
				case k == "templates":
					for _, t := range seq(v) {
						filePath(t, k)
					}
				default:
					walk(v)
				}
			}
		case yaml.SequenceNode, yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c)
			}
		case yaml.ScalarNode:
			if u, err := url.Parse(n.Value); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
				if t, ok := m.target(u.Host); ok {
					u.Host = t
					n.Value = u.String()
				}
			}
		}
	}
	walk(&doc)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return encode(&doc, "alerts/alertmanager.yml")
}

// MapURL translates a URL naming a compose service (e.g. the default
// SLACK_WEBHOOK_URL, http://slacksink:9095/...) to the native address; other
// URLs are returned unchanged.
func (m Mapping) MapURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if t, ok := m.target(u.Host); ok {
		u.Host = t
		return u.String()
	}
	return raw
}

func encode(doc *yaml.Node, source string) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Rendered by the native stack (compose/internal/stack) from %s.\n# Do not edit: it is rewritten on every `make stack-up`.\n", source)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode rendered config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode rendered config: %w", err)
	}
	return b.Bytes(), nil
}

// lookup returns the value of key in mapping node n, or nil.
func lookup(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// seq returns the items of sequence node n (nil for anything else).
func seq(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}

func scalar(v string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
