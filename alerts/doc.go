// Package alerts holds no Go code of its own: it is the folder of the
// glasshouse alerting files (slo.yaml, symptoms.yaml, generated/,
// alertmanager.yml, templates/, runbooks/) and of the tests that prove them
// with promtool, amtool and a real Alertmanager.
//
// The Go code lives in its subpackages: slo (the spec), rules (the
// generator), slacksink (a fake Slack), gameday (the end-to-end test) and
// cmd/ (rulegen, slacksink).
package alerts
