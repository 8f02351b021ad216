// Package gameday holds the end-to-end proof of glasshouse's alerting
// (gameday_test.go, run by `make gameday`): the real API binary, Prometheus,
// Alertmanager and the Slack sink on loopback, traffic, injected faults, and
// the time from each fault to its Slack message and back.
//
// The SLO rules are rendered from alerts/slo.yaml with windows compressed
// 60x (minutes become seconds); the real windows are covered by the promtool
// tests in alerts/tests.
package gameday
