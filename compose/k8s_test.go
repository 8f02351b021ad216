package compose_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// Loose types for kinds k8s.io/api does not define. They list only the
// fields the manifests use and are decoded with unknown fields rejected, so a
// typo still fails; the operator's full schema is not checked.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
		Digest  string `json:"digest"`
	} `json:"images"`
	Labels []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors"`
	} `json:"labels"`
}

type httpRoute struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Metadata   metav1ObjectMeta `json:"metadata"`
	Spec       struct {
		ParentRefs []struct {
			Name        string `json:"name"`
			Namespace   string `json:"namespace"`
			SectionName string `json:"sectionName"`
		} `json:"parentRefs"`
		Hostnames []string `json:"hostnames"`
		Rules     []struct {
			Matches []struct {
				Path struct {
					Type  string `json:"type"`
					Value string `json:"value"`
				} `json:"path"`
			} `json:"matches"`
			BackendRefs []struct {
				Name string `json:"name"`
				Port int32  `json:"port"`
			} `json:"backendRefs"`
		} `json:"rules"`
	} `json:"spec"`
}

type serviceMonitor struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Metadata   metav1ObjectMeta   `json:"metadata"`
	Spec       serviceMonitorSpec `json:"spec"`
}

type metav1ObjectMeta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels"`
}

type serviceMonitorSpec struct {
	JobLabel string `json:"jobLabel"`
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	NamespaceSelector struct {
		MatchNames []string `json:"matchNames"`
	} `json:"namespaceSelector"`
	Endpoints []struct {
		Port     string `json:"port"`
		Path     string `json:"path"`
		Interval string `json:"interval"`
		Scheme   string `json:"scheme"`
	} `json:"endpoints"`
}

// manifests holds every decoded object, by kind.
type manifests struct {
	namespaces  []corev1.Namespace
	configMaps  []corev1.ConfigMap
	secrets     []corev1.Secret
	accounts    []corev1.ServiceAccount
	deployments []appsv1.Deployment
	services    []corev1.Service
	ingresses   []networkingv1.Ingress
	hpas        []autoscalingv2.HorizontalPodAutoscaler
	pdbs        []policyv1.PodDisruptionBudget
	netpols     []networkingv1.NetworkPolicy
	monitors    []serviceMonitor
	routes      []httpRoute
	kustomize   map[string]kustomization // directory -> kustomization
	files       map[string][]string      // directory -> manifest files (not kustomization.yaml)
}

// decodeStrict decodes one YAML document into a typed object, failing on
// fields the type does not have.
func decodeStrict(doc []byte, into any) error {
	return yaml.UnmarshalStrict(doc, into)
}

func decodeManifest(m *manifests, file string, doc []byte) error {
	var head struct{ APIVersion, Kind string }
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return err
	}
	key := head.APIVersion + "/" + head.Kind
	var err error
	switch key {
	case "v1/Namespace":
		var o corev1.Namespace
		err = decodeStrict(doc, &o)
		m.namespaces = append(m.namespaces, o)
	case "v1/ConfigMap":
		var o corev1.ConfigMap
		err = decodeStrict(doc, &o)
		m.configMaps = append(m.configMaps, o)
	case "v1/Secret":
		var o corev1.Secret
		err = decodeStrict(doc, &o)
		m.secrets = append(m.secrets, o)
	case "v1/ServiceAccount":
		var o corev1.ServiceAccount
		err = decodeStrict(doc, &o)
		m.accounts = append(m.accounts, o)
	case "apps/v1/Deployment":
		var o appsv1.Deployment
		err = decodeStrict(doc, &o)
		m.deployments = append(m.deployments, o)
	case "v1/Service":
		var o corev1.Service
		err = decodeStrict(doc, &o)
		m.services = append(m.services, o)
	case "networking.k8s.io/v1/Ingress":
		var o networkingv1.Ingress
		err = decodeStrict(doc, &o)
		m.ingresses = append(m.ingresses, o)
	case "autoscaling/v2/HorizontalPodAutoscaler":
		var o autoscalingv2.HorizontalPodAutoscaler
		err = decodeStrict(doc, &o)
		m.hpas = append(m.hpas, o)
	case "policy/v1/PodDisruptionBudget":
		var o policyv1.PodDisruptionBudget
		err = decodeStrict(doc, &o)
		m.pdbs = append(m.pdbs, o)
	case "networking.k8s.io/v1/NetworkPolicy":
		var o networkingv1.NetworkPolicy
		err = decodeStrict(doc, &o)
		m.netpols = append(m.netpols, o)
	case "monitoring.coreos.com/v1/ServiceMonitor":
		var o serviceMonitor
		err = decodeStrict(doc, &o)
		m.monitors = append(m.monitors, o)
	case "gateway.networking.k8s.io/v1/HTTPRoute":
		var o httpRoute
		err = decodeStrict(doc, &o)
		m.routes = append(m.routes, o)
	case "kustomize.config.k8s.io/v1beta1/Kustomization":
		var o kustomization
		err = decodeStrict(doc, &o)
		m.kustomize[filepath.Dir(file)] = o
		return err
	default:
		return fmt.Errorf("unexpected kind %s: add it to the test's decoder", key)
	}
	m.files[filepath.Dir(file)] = append(m.files[filepath.Dir(file)], filepath.Base(file))
	return err
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{kustomize: map[string]kustomization{}, files: map[string][]string{}}
	files, _ := filepath.Glob("k8s/*.yaml")
	more, _ := filepath.Glob("k8s/*/*.yaml")
	files = append(files, more...)
	if len(files) == 0 {
		t.Fatal("no manifests under compose/k8s")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) == "" {
				continue
			}
			if err := decodeManifest(m, f, []byte(doc)); err != nil {
				t.Errorf("%s (document %d): %v", f, i+1, err)
			}
		}
	}
	return m
}

func TestK8sStrictDecodingRejectsUnknownFields(t *testing.T) {
	m := &manifests{kustomize: map[string]kustomization{}, files: map[string][]string{}}
	bad := []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicas: 1\n  replica: 2\n")
	if err := decodeManifest(m, "k8s/x.yaml", bad); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Errorf("a misspelt field decoded without error (err = %v)", err)
	}
	badMonitor := []byte("apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: x\nspec:\n  endpoints:\n    - port: admin\n      intervall: 15s\n")
	if err := decodeManifest(m, "k8s/x.yaml", badMonitor); err == nil {
		t.Error("a misspelt ServiceMonitor field decoded without error")
	}
	if err := decodeManifest(m, "k8s/x.yaml", []byte("apiVersion: v9\nkind: Mystery\n")); err == nil {
		t.Error("an unknown kind decoded without error")
	}
}

func TestK8sManifests(t *testing.T) {
	m := loadManifests(t)
	one := func(kind string, n int) {
		if n != 1 {
			t.Fatalf("%d %s manifests, want exactly 1", n, kind)
		}
	}
	one("Namespace", len(m.namespaces))
	one("ConfigMap", len(m.configMaps))
	one("Secret (example)", len(m.secrets))
	one("Deployment", len(m.deployments))
	one("Service", len(m.services))
	one("Ingress", len(m.ingresses))
	one("HorizontalPodAutoscaler", len(m.hpas))
	one("PodDisruptionBudget", len(m.pdbs))

	ns := m.namespaces[0].Name
	cm, secret, dep, svc := m.configMaps[0], m.secrets[0], m.deployments[0], m.services[0]
	ing, hpa, pdb := m.ingresses[0], m.hpas[0], m.pdbs[0]

	for _, meta := range []struct{ kind, ns string }{
		{"ConfigMap", cm.Namespace}, {"Secret", secret.Namespace}, {"Deployment", dep.Namespace},
		{"Service", svc.Namespace}, {"Ingress", ing.Namespace}, {"HPA", hpa.Namespace}, {"PDB", pdb.Namespace},
	} {
		if meta.ns != ns {
			t.Errorf("%s is in namespace %q, want %q", meta.kind, meta.ns, ns)
		}
	}

	pod := dep.Spec.Template
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	resolve := func(p intstr.IntOrString) int32 {
		if p.Type == intstr.String {
			return ports[p.StrVal]
		}
		return p.IntVal
	}

	// The selector picks the pod template.
	if !matches(dep.Spec.Selector.MatchLabels, pod.Labels) {
		t.Errorf("deployment selector %v does not match its pod labels %v", dep.Spec.Selector.MatchLabels, pod.Labels)
	}

	// The container listens where the config says.
	if got := fmt.Sprint(ports["http"]); portOf(cm.Data["ADDR"]) != got {
		t.Errorf("ADDR=%q but the http containerPort is %s", cm.Data["ADDR"], got)
	}
	if got := fmt.Sprint(ports["admin"]); portOf(cm.Data["ADMIN_ADDR"]) != got || !strings.HasPrefix(cm.Data["ADMIN_ADDR"], "0.0.0.0:") {
		t.Errorf("ADMIN_ADDR=%q but the admin containerPort is %s (and it must listen beyond loopback to be scraped)", cm.Data["ADMIN_ADDR"], got)
	}

	// Probes hit real routes on a real port.
	probes := map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe}
	wantPath := map[string]string{"liveness": "/health/live", "readiness": "/health/ready", "startup": "/health/live"}
	for name, pr := range probes {
		if pr == nil || pr.HTTPGet == nil {
			t.Errorf("%s probe: missing or not httpGet", name)
			continue
		}
		if pr.HTTPGet.Path != wantPath[name] {
			t.Errorf("%s probe path = %q, want %q", name, pr.HTTPGet.Path, wantPath[name])
		}
		if resolve(pr.HTTPGet.Port) != ports["http"] || ports["http"] == 0 {
			t.Errorf("%s probe port %v is not the container's http port %d", name, pr.HTTPGet.Port.String(), ports["http"])
		}
	}
	checkRoutesExist(t, slices.Collect(func(yield func(string) bool) {
		for _, p := range wantPath {
			if !yield(p) {
				return
			}
		}
	}))

	// Resources: requests for the scheduler and HPA, a memory limit.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("no %s request (the HPA's utilisation is relative to it)", r)
		}
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Error("no memory limit")
	}

	// Security context: the restricted Pod Security profile.
	sc := c.SecurityContext
	psc := pod.Spec.SecurityContext
	switch {
	case sc == nil:
		t.Error("container has no securityContext")
	default:
		if !(isTrue(sc.RunAsNonRoot) || (psc != nil && isTrue(psc.RunAsNonRoot))) {
			t.Error("runAsNonRoot is not set")
		}
		if !isTrue(sc.ReadOnlyRootFilesystem) {
			t.Error("readOnlyRootFilesystem is not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Error("allowPrivilegeEscalation is not false")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Error("capabilities must drop ALL and add none")
		}
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod seccompProfile is not RuntimeDefault")
	}
	if psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		t.Error("runAsUser is root")
	}
	// A read-only root needs writable mounts where the app writes.
	mounts := map[string]bool{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.MountPath] = true
	}
	for _, dir := range []string{"/tmp", cm.Data["DATA_DIR"]} {
		if !mounts[dir] {
			t.Errorf("%s is not a writable volume, but the root filesystem is read-only", dir)
		}
	}

	// Graceful termination outlasts the preStop sleep plus the app's
	// shutdown timeout.
	shutdown, err := time.ParseDuration(cm.Data["SHUTDOWN_TIMEOUT"])
	if err != nil {
		t.Fatalf("SHUTDOWN_TIMEOUT: %v", err)
	}
	var preStop time.Duration
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Error("no preStop sleep: endpoints may still route to a pod that is shutting down")
	} else {
		preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	// The app's optional drain delay (readiness 503 before closing) adds up.
	var drain time.Duration
	if v := cm.Data["SHUTDOWN_DRAIN_DELAY"]; v != "" {
		if drain, err = time.ParseDuration(v); err != nil {
			t.Fatalf("SHUTDOWN_DRAIN_DELAY: %v", err)
		}
	}
	grace := time.Duration(ptrOr(pod.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
	if grace <= preStop+drain+shutdown {
		t.Errorf("terminationGracePeriodSeconds %v <= preStop %v + SHUTDOWN_DRAIN_DELAY %v + SHUTDOWN_TIMEOUT %v", grace, preStop, drain, shutdown)
	}

	// Config and secret references resolve.
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil && ef.ConfigMapRef.Name != cm.Name:
			t.Errorf("envFrom configMapRef %q, the ConfigMap is %q", ef.ConfigMapRef.Name, cm.Name)
		case ef.SecretRef != nil && ef.SecretRef.Name != secret.Name:
			t.Errorf("envFrom secretRef %q, the example Secret is %q", ef.SecretRef.Name, secret.Name)
		}
	}
	if pod.Spec.ServiceAccountName != "" && (len(m.accounts) != 1 || m.accounts[0].Name != pod.Spec.ServiceAccountName) {
		t.Errorf("serviceAccountName %q has no ServiceAccount manifest", pod.Spec.ServiceAccountName)
	}
	for k, v := range secret.StringData {
		if !strings.Contains(v, "<") {
			t.Errorf("secret.example.yaml %s = %q: use a <placeholder>, never a real value", k, v)
		}
	}
	for _, k := range []string{"DATABASE_URL", "JWT_SECRET"} {
		if _, ok := secret.StringData[k]; !ok {
			t.Errorf("secret.example.yaml lacks %s", k)
		}
		if _, ok := cm.Data[k]; ok {
			t.Errorf("%s is in the ConfigMap; it is a secret", k)
		}
	}
	if c.Image == "" || strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, ":") {
		t.Errorf("image %q: pin a tag or digest", c.Image)
	}

	// Service -> pods -> ports.
	if !matches(svc.Spec.Selector, pod.Labels) {
		t.Errorf("service selector %v does not match the pod labels", svc.Spec.Selector)
	}
	svcPorts := map[string]bool{}
	for _, p := range svc.Spec.Ports {
		svcPorts[p.Name] = true
		if resolve(p.TargetPort) == 0 {
			t.Errorf("service port %s targets %s, which the container does not expose", p.Name, p.TargetPort.String())
		}
	}

	// Ingress -> service, with TLS for every host.
	tlsHosts := map[string]bool{}
	for _, tl := range ing.Spec.TLS {
		if tl.SecretName == "" {
			t.Error("ingress TLS entry without secretName")
		}
		for _, h := range tl.Hosts {
			tlsHosts[h] = true
		}
	}
	if len(ing.Spec.Rules) == 0 {
		t.Error("ingress has no rules")
	}
	for _, r := range ing.Spec.Rules {
		if !tlsHosts[r.Host] {
			t.Errorf("ingress host %q has no TLS", r.Host)
		}
		for _, p := range r.HTTP.Paths {
			b := p.Backend.Service
			if b == nil || b.Name != svc.Name || !svcPorts[b.Port.Name] || b.Port.Name == "admin" {
				t.Errorf("ingress path %s backend %+v: want service %s port http", p.Path, b, svc.Name)
			}
		}
	}

	// HPA targeting the Deployment, above the PDB floor.
	if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != dep.Name {
		t.Errorf("HPA targets %s/%s, want Deployment/%s", ref.Kind, ref.Name, dep.Name)
	}
	checkHPAOwnsReplicas(t, hpa, dep, c, cm.Data["GOMEMLIMIT"])
	if pdb.Spec.MinAvailable == nil || ptrOr(hpa.Spec.MinReplicas, 1) <= pdb.Spec.MinAvailable.IntVal {
		t.Errorf("HPA minReplicas %d must exceed the PDB's minAvailable %v, or drains block", ptrOr(hpa.Spec.MinReplicas, 1), pdb.Spec.MinAvailable)
	}
	if !matches(pdb.Spec.Selector.MatchLabels, pod.Labels) {
		t.Errorf("PDB selector %v does not match the pod labels", pdb.Spec.Selector.MatchLabels)
	}

	// Network policy names real container ports.
	for _, np := range m.netpols {
		if !matches(np.Spec.PodSelector.MatchLabels, pod.Labels) {
			t.Errorf("network policy %s selects %v, not the API pods", np.Name, np.Spec.PodSelector.MatchLabels)
		}
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				if p.Port == nil || resolve(*p.Port) == 0 {
					t.Errorf("network policy %s allows port %v, which the container does not expose", np.Name, p.Port)
				}
			}
		}
	}

	// ServiceMonitor scrapes the admin port's /metrics and yields job
	// glasshouse-api (the SLO selector).
	for _, sm := range m.monitors {
		if !matches(sm.Spec.Selector.MatchLabels, svc.Labels) {
			t.Errorf("ServiceMonitor selects %v, not the service", sm.Spec.Selector.MatchLabels)
		}
		if svc.Labels[sm.Spec.JobLabel] != "glasshouse-api" {
			t.Errorf("ServiceMonitor jobLabel %q gives job %q, want glasshouse-api", sm.Spec.JobLabel, svc.Labels[sm.Spec.JobLabel])
		}
		for _, ep := range sm.Spec.Endpoints {
			if ep.Port != "admin" || !svcPorts[ep.Port] || ep.Path != "/metrics" {
				t.Errorf("ServiceMonitor endpoint %+v: want the service's admin port, path /metrics", ep)
			}
		}
	}

	checkMonitorSelected(t, m)
	checkRoutes(t, m, ing, svc)
	checkIngressNamespaceOnce(t, m)
	checkImageSetByKustomize(t, m, c.Image)

	// Each kustomization lists every manifest beside it, except the example
	// Secret, which must never be applied as is.
	for dir, k := range m.kustomize {
		want := slices.DeleteFunc(slices.Clone(m.files[dir]), func(f string) bool { return f == "secret.example.yaml" })
		got := slices.Clone(k.Resources)
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s/kustomization.yaml resources = %v, want %v", dir, got, want)
		}
	}
}

// checkRoutesExist looks for each probe path among the API's routes, when the
// API's route table is in this checkout.
func checkRoutesExist(t *testing.T, paths []string) {
	t.Helper()
	routes := filepath.Join(repo(t), "app", "httpapi", "routes.go")
	b, err := os.ReadFile(routes)
	if err != nil {
		t.Logf("no %s to check the probe paths against: %v", routes, err)
		return
	}
	for _, p := range paths {
		if !bytes.Contains(b, []byte(`"GET `+p+`"`)) {
			t.Errorf("probe path %s is not a GET route in app/httpapi/routes.go", p)
		}
	}
}

func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func isTrue(b *bool) bool { return b != nil && *b }

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
