package alerts

import _ "embed" // for the SLO spec

//go:embed slo.yaml
var sloSpec string

// SLOSpec returns the committed SLO spec (alerts/slo.yaml) as built into
// the binary, so a program reading it works from any directory; parse it
// with slo.Parse.
func SLOSpec() []byte { return []byte(sloSpec) }
