package loadtest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/glasshouse-dev/glasshouse/loadtest"
)

// A test is a Go value: here an open-model scenario at 50 iterations per
// second against a loopback server, a check on every response and two
// thresholds. The run's error maps to k6's exit code.
func ExampleRun() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()

	test := loadtest.Test{
		Scenarios: []loadtest.Scenario{{
			Name:     "browse",
			Executor: loadtest.ConstantArrivalRate{Rate: 50, Duration: time.Second, PreAllocatedVUs: 5, MaxVUs: 20},
			Exec: func(ctx context.Context, vu *loadtest.VU) error {
				res := vu.Get(ctx, srv.URL+"/items/42", &loadtest.Params{Name: "/items/{id}"})
				vu.Check("status is 200", res.Status == http.StatusOK)
				return nil
			},
		}},
		Thresholds: map[string][]loadtest.Threshold{
			"http_req_duration{scenario:browse}": {loadtest.T("p(95)<500")},
			"checks":                             {loadtest.T("rate==1")},
		},
	}
	res, err := loadtest.Run(context.Background(), test, loadtest.RunOptions{Log: os.Stderr})
	if err != nil {
		fmt.Println("exit code", loadtest.ExitCode(err))
		return
	}
	n, _ := res.Value("http_reqs{name:/items/{id}}", "count")
	fmt.Println("requests:", n, "thresholds passed:", res.ThresholdsPassed())
	// Output: requests: 50 thresholds passed: true
}
