package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

const instrumentationName = "github.com/glasshouse-dev/glasshouse/telemetry"

// traceConfig is everything the tracer provider needs, read from OTEL_*.
type traceConfig struct {
	disabled bool
	// distrust is OTEL_TRUST_INCOMING_TRACE=false: server spans start a
	// new trace and link the incoming one instead of joining it.
	distrust    bool
	resource    []attribute.KeyValue
	sampler     sdktrace.Sampler
	protocol    string // "http/protobuf" or "grpc"
	endpointURL string // full URL; "" means no export
	headers     map[string]string
	timeout     time.Duration // per export request; 0 = exporter default
	compression string        // "gzip" or "none"

	queueSize     int
	batchSize     int
	scheduleDelay time.Duration
	exportTimeout time.Duration
}

// traceConfigFromEnv reads the OpenTelemetry SDK environment variables
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/)
// through cfg.Getenv and reports every malformed one at once.
func traceConfigFromEnv(cfg Config) (traceConfig, error) {
	env := func(k string) string { return strings.TrimSpace(cfg.Getenv(k)) }
	var errs []error
	tc := traceConfig{
		protocol:      "http/protobuf",
		compression:   "none",
		queueSize:     2048,
		batchSize:     512,
		scheduleDelay: 5 * time.Second,
		exportTimeout: 30 * time.Second,
	}

	if v := env("OTEL_SDK_DISABLED"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("OTEL_SDK_DISABLED=%q: want true or false", v))
		}
		tc.disabled = b
	}

	if v := env("OTEL_TRUST_INCOMING_TRACE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("OTEL_TRUST_INCOMING_TRACE=%q: want true or false", v))
		}
		tc.distrust = err == nil && !b
	}

	attrs, err := parseKeyValues(env("OTEL_RESOURCE_ATTRIBUTES"))
	if err != nil {
		errs = append(errs, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err))
	}
	name := cfg.ServiceName
	if v, ok := attrs[string(semconv.ServiceNameKey)]; ok && v != "" {
		name = v
	}
	if v := env("OTEL_SERVICE_NAME"); v != "" {
		name = v
	}
	attrs[string(semconv.ServiceNameKey)] = name
	if _, ok := attrs[string(semconv.ServiceVersionKey)]; !ok && cfg.ServiceVersion != "" {
		attrs[string(semconv.ServiceVersionKey)] = cfg.ServiceVersion
	}
	if _, ok := attrs[string(semconv.DeploymentEnvironmentNameKey)]; !ok && cfg.Environment != "" {
		attrs[string(semconv.DeploymentEnvironmentNameKey)] = cfg.Environment
	}
	for k, v := range attrs {
		tc.resource = append(tc.resource, attribute.String(k, v))
	}

	tc.sampler, err = samplerFromEnv(env("OTEL_TRACES_SAMPLER"), env("OTEL_TRACES_SAMPLER_ARG"))
	if err != nil {
		errs = append(errs, err)
	}

	// otlpVar reads OTEL_EXPORTER_OTLP_TRACES_<name>, or else the shared
	// OTEL_EXPORTER_OTLP_<name>, and says which of them it read.
	otlpVar := func(name string) (key, value string) {
		key = "OTEL_EXPORTER_OTLP_TRACES_" + name
		if v := env(key); v != "" {
			return key, v
		}
		key = "OTEL_EXPORTER_OTLP_" + name
		return key, env(key)
	}
	// oneOf sets *dst to v when v is one of allowed; "" keeps the default.
	oneOf := func(key, v string, dst *string, allowed ...string) {
		switch {
		case v == "":
		case slices.Contains(allowed, v):
			*dst = v
		default:
			errs = append(errs, fmt.Errorf("%s=%q: want %s", key, v, strings.Join(allowed, " or ")))
		}
	}

	var exporter string
	oneOf("OTEL_TRACES_EXPORTER", env("OTEL_TRACES_EXPORTER"), &exporter, "otlp", "none")
	k, v := otlpVar("PROTOCOL")
	oneOf(k, v, &tc.protocol, "http/protobuf", "grpc")

	endpointVar := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	if u := env(endpointVar); u != "" {
		tc.endpointURL = u // used as is, per the spec
	} else if u := env("OTEL_EXPORTER_OTLP_ENDPOINT"); u != "" {
		endpointVar = "OTEL_EXPORTER_OTLP_ENDPOINT"
		tc.endpointURL = u
		if tc.protocol == "http/protobuf" {
			tc.endpointURL = strings.TrimRight(u, "/") + "/v1/traces"
		}
	}
	if tc.endpointURL != "" {
		if p, err := url.Parse(tc.endpointURL); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("%s: OTLP endpoint %q: want an http:// or https:// URL", endpointVar, redactURL(tc.endpointURL)))
		}
	}
	if exporter == "none" {
		tc.endpointURL = ""
	}

	k, v = otlpVar("HEADERS")
	if tc.headers, err = parseKeyValues(v); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", k, err))
	}

	k, v = otlpVar("COMPRESSION")
	oneOf(k, v, &tc.compression, "gzip", "none")

	millis := func(key string, dst *time.Duration) {
		v := env(key)
		if v == "" {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a non-negative number of milliseconds", key, v))
			return
		}
		*dst = time.Duration(n) * time.Millisecond
	}
	positive := func(key string, dst *int) {
		v := env(key)
		if v == "" {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive integer", key, v))
			return
		}
		*dst = n
	}
	k, _ = otlpVar("TIMEOUT")
	millis(k, &tc.timeout)
	millis("OTEL_BSP_SCHEDULE_DELAY", &tc.scheduleDelay)
	millis("OTEL_BSP_EXPORT_TIMEOUT", &tc.exportTimeout)
	positive("OTEL_BSP_MAX_QUEUE_SIZE", &tc.queueSize)
	positive("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &tc.batchSize)
	if tc.batchSize > tc.queueSize {
		tc.batchSize = tc.queueSize
	}
	if tc.scheduleDelay == 0 {
		tc.scheduleDelay = time.Millisecond
	}
	return tc, errors.Join(errs...)
}

// samplerFromEnv implements OTEL_TRACES_SAMPLER; the default is
// parentbased_always_on so every request has IDs for logs and exemplars.
func samplerFromEnv(name, arg string) (sdktrace.Sampler, error) {
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil
		}
		f, err := strconv.ParseFloat(arg, 64)
		if err != nil || f < 0 || f > 1 {
			return 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio between 0 and 1", arg)
		}
		return f, nil
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio", "parentbased_traceidratio":
		f, err := ratio()
		if err != nil {
			return nil, err
		}
		if name == "traceidratio" {
			return sdktrace.TraceIDRatioBased(f), nil
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(f)), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio", name)
}

// parseKeyValues parses the "k1=v1,k2=v2" lists of OTEL_RESOURCE_ATTRIBUTES
// and OTEL_EXPORTER_OTLP_HEADERS, with percent-encoded values.
func parseKeyValues(s string) (map[string]string, error) {
	m := make(map[string]string)
	if s == "" {
		return m, nil
	}
	var errs []error
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			errs = append(errs, fmt.Errorf("%q: want key=value", item))
			continue
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			errs = append(errs, fmt.Errorf("%q: bad percent-encoding", item))
			continue
		}
		m[k] = dv
	}
	return m, errors.Join(errs...)
}

// newTracerProvider builds the SDK provider (or a no-op one when
// OTEL_SDK_DISABLED=true). Without an endpoint or extra processors no span
// could reach anyone, so the provider only gives spans their IDs and
// sampling decision (idProvider), for logs, exemplars and propagation.
func newTracerProvider(ctx context.Context, tc traceConfig, extra []sdktrace.SpanProcessor, m *metrics, log *slog.Logger) (trace.TracerProvider, func(context.Context) error, error) {
	noShutdown := func(context.Context) error { return nil }
	if tc.disabled {
		return noop.NewTracerProvider(), noShutdown, nil
	}
	if tc.endpointURL == "" && len(extra) == 0 {
		return newIDProvider(tc.sampler), noShutdown, nil
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithProcessPID(),
		resource.WithProcessRuntimeName(),
		resource.WithProcessRuntimeVersion(),
		resource.WithHost(),
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(tc.resource...),
	)
	// A detector that cannot read (say) the host name leaves a partial
	// resource, which is still worth using.
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, nil, fmt.Errorf("trace resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(tc.sampler),
	}
	if tc.endpointURL != "" {
		exp, err := newExporter(ctx, tc)
		if err != nil {
			return nil, nil, err
		}
		bp := newBatchProcessor(exp, tc, m.spansDropped, log)
		opts = append(opts, sdktrace.WithSpanProcessor(bp))
	}
	for _, sp := range extra {
		opts = append(opts, sdktrace.WithSpanProcessor(sp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return tp, tp.Shutdown, nil
}

func newExporter(ctx context.Context, tc traceConfig) (sdktrace.SpanExporter, error) {
	if tc.protocol == "grpc" {
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL(tc.endpointURL)}
		if len(tc.headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(tc.headers))
		}
		if tc.timeout > 0 {
			opts = append(opts, otlptracegrpc.WithTimeout(tc.timeout))
		}
		if tc.compression == "gzip" {
			opts = append(opts, otlptracegrpc.WithCompressor("gzip"))
		}
		// The gRPC client connects lazily: a dead collector does not fail New.
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("otlp grpc exporter: %w", err)
		}
		return exp, nil
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(tc.endpointURL)}
	if len(tc.headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(tc.headers))
	}
	if tc.timeout > 0 {
		opts = append(opts, otlptracehttp.WithTimeout(tc.timeout))
	}
	if tc.compression == "gzip" {
		opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp http exporter: %w", err)
	}
	return exp, nil
}
