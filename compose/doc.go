// Package compose holds glasshouse's deployment files rather than Go code:
// the compose stack (compose.yaml and the Prometheus, Tempo, Loki and Alloy
// configs it mounts), the Dockerfile, Kubernetes manifests (k8s/), a systemd
// unit and an nginx config (deploy/), and stack.sh behind `make stack-up`.
//
// Its tests load every one of those files with the parser of the tool that
// will read it (compose-spec loader, promtool, amtool, nginx -t, strict
// k8s.io/api decoding) and check that the ports, paths and names they share
// agree. The native stack used when no Docker engine answers lives in
// internal/stack and cmd/nativestack.
package compose
