package compose_test

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// checkHPAOwnsReplicas: under an HPA the Deployment must not set replicas
// (every `kubectl apply -k` would reset the HPA's count), GOMEMLIMIT sits at
// 75-90% of the memory limit, and a memory target must not scale up below
// the heap size GOMEMLIMIT lets Go keep, or the HPA scales up on memory and
// never back down.
func checkHPAOwnsReplicas(t *testing.T, hpa autoscalingv2.HorizontalPodAutoscaler, dep appsv1.Deployment, c corev1.Container, goMemLimit string) {
	t.Helper()
	if dep.Spec.Replicas != nil {
		t.Errorf("Deployment %s sets replicas: %d under HPA %s; remove it", dep.Name, *dep.Spec.Replicas, hpa.Name)
	}
	limit, ok := c.Resources.Limits[corev1.ResourceMemory]
	if !ok {
		t.Fatal("no memory limit")
	}
	gml, ok := parseGoMemLimit(goMemLimit)
	switch {
	case !ok:
		t.Fatalf("GOMEMLIMIT=%q beside a %s memory limit: want a size at 75-90%% of it", goMemLimit, limit.String())
	case gml*100 < limit.Value()*75 || gml*100 > limit.Value()*90:
		t.Errorf("GOMEMLIMIT=%s is %d%% of the %s memory limit, want 75-90%%", goMemLimit, gml*100/limit.Value(), limit.String())
	}
	var scalesOnCPU bool
	for _, mt := range hpa.Spec.Metrics {
		if mt.Resource == nil {
			continue
		}
		switch mt.Resource.Name {
		case corev1.ResourceCPU:
			scalesOnCPU = true
		case corev1.ResourceMemory:
			req := c.Resources.Requests[corev1.ResourceMemory]
			u := mt.Resource.Target.AverageUtilization
			if u == nil || req.Value()*int64(*u) <= gml*100 {
				t.Errorf("HPA scales up on memory at %d%% of the %s request, below GOMEMLIMIT=%s the heap may hold at rest: it would never scale down", ptrOr(u, 0), req.String(), goMemLimit)
			}
		}
	}
	if !scalesOnCPU {
		t.Error("HPA does not scale on CPU")
	}
}

// checkMonitorSelected: kube-prometheus-stack selects ServiceMonitors by its
// release label, so the monitoring kustomization adds one (without touching
// selectors).
func checkMonitorSelected(t *testing.T, m *manifests) {
	t.Helper()
	if len(m.monitors) == 0 {
		t.Fatal("no ServiceMonitor")
	}
	k, ok := m.kustomize[filepath.Join("k8s", "monitoring")]
	if !ok {
		t.Fatal("no k8s/monitoring/kustomization.yaml")
	}
	var release bool
	for _, l := range k.Labels {
		if l.Pairs["release"] != "" {
			release = true
			if l.IncludeSelectors {
				t.Error("the release label is added to selectors too; it must only label the ServiceMonitor")
			}
		}
	}
	for _, sm := range m.monitors {
		if sm.Metadata.Labels["release"] != "" {
			release = true
		}
	}
	if !release {
		t.Error("the ServiceMonitor gets no release label, so kube-prometheus-stack's Prometheus ignores it")
	}
}

// checkRoutes: the Gateway API route serves the Ingress's hosts from the
// Service's public port, never the admin port.
func checkRoutes(t *testing.T, m *manifests, ing networkingv1.Ingress, svc corev1.Service) {
	t.Helper()
	if len(m.routes) != 1 {
		t.Fatalf("%d HTTPRoutes, want 1 beside the Ingress", len(m.routes))
	}
	r := m.routes[0]
	if r.Metadata.Namespace != svc.Namespace {
		t.Errorf("HTTPRoute in namespace %q, the Service in %q", r.Metadata.Namespace, svc.Namespace)
	}
	var ingHosts []string
	for _, rule := range ing.Spec.Rules {
		ingHosts = append(ingHosts, rule.Host)
	}
	if !slices.Equal(r.Spec.Hostnames, ingHosts) {
		t.Errorf("HTTPRoute hostnames %v, Ingress hosts %v", r.Spec.Hostnames, ingHosts)
	}
	if len(r.Spec.ParentRefs) == 0 || r.Spec.ParentRefs[0].Name == "" {
		t.Error("HTTPRoute has no parent Gateway")
	}
	var httpPort int32
	for _, p := range svc.Spec.Ports {
		if p.Name == "http" {
			httpPort = p.Port
		}
	}
	for _, rule := range r.Spec.Rules {
		for _, b := range rule.BackendRefs {
			if b.Name != svc.Name || b.Port != httpPort || httpPort == 0 {
				t.Errorf("HTTPRoute backend %s:%d, want %s:%d (the http port)", b.Name, b.Port, svc.Name, httpPort)
			}
		}
	}
}

// checkIngressNamespaceOnce: the ingress controller's namespace is named in
// one place, the one NetworkPolicy rule that opens the http port.
func checkIngressNamespaceOnce(t *testing.T, m *manifests) {
	t.Helper()
	var rules int
	for _, np := range m.netpols {
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				if p.Port == nil || p.Port.String() != "http" {
					continue
				}
				rules++
				if len(rule.From) != 1 || rule.From[0].NamespaceSelector == nil ||
					rule.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] == "" {
					t.Errorf("network policy %s opens http to %+v, want one namespaceSelector on kubernetes.io/metadata.name", np.Name, rule.From)
				}
			}
		}
	}
	if rules != 1 {
		t.Errorf("%d network policy rules open the http port, want exactly 1 (the single place naming the ingress controller's namespace)", rules)
	}
}

// checkImageSetByKustomize: the kustomization's images entry names the
// Deployment's image and pins a tag or digest, so a fork changes one line
// (`kustomize edit set image`).
func checkImageSetByKustomize(t *testing.T, m *manifests, image string) {
	t.Helper()
	name, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	k := m.kustomize["k8s"]
	var found bool
	for _, img := range k.Images {
		if img.Name != name {
			continue
		}
		found = true
		exact := regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+$`).MatchString(img.NewTag)
		if !exact && !strings.HasPrefix(img.Digest, "sha256:") {
			t.Errorf("kustomization images %s: newTag %q digest %q; pin an exact version or a digest", name, img.NewTag, img.Digest)
		}
	}
	if !found {
		t.Errorf("k8s/kustomization.yaml has no images entry for %s", name)
	}
}
