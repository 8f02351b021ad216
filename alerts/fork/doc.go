// Package fork holds the end-to-end proof that a second service adopts the
// stack by editing one file (`make fork-check`): the API and
// examples/orders run side by side under a real Prometheus that loads both
// services' rules, the load engine drives each with thresholds from its own
// SLO spec, a fault is injected into orders only, and the shared dashboards
// must show data for both jobs. It has tests only.
package fork
