// Package scaleout holds the scale-out check behind `make scaleout-check`:
// three API replicas sharing one PostgreSQL database and one Redis, behind
// Debian's nginx running the repository's config, scraped by a real
// Prometheus with the project's rules, driven by the load engine through
// nginx while replicas are restarted one by one and one is killed. It is
// what a Kubernetes Deployment with several replicas does, run as local
// processes on loopback.
//
// The package has no non-test code; the check is TestScaleOut. It runs only
// with GLASSHOUSE_SCALEOUT=1 (the make target sets it), because it takes
// about two minutes.
package scaleout
