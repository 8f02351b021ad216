package compose_test

import (
	"bytes"
	"path/filepath"
	"regexp"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomizeBuild runs kustomize (the library kubectl apply -k embeds) on a
// directory under compose/k8s and decodes its output strictly.
func kustomizeBuild(t *testing.T, dir string) *manifests {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("k8s", dir))
	if err != nil {
		t.Fatal(err)
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		t.Fatalf("kustomize build k8s/%s: %v", dir, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	m := &manifests{kustomize: map[string]kustomization{}, files: map[string][]string{}}
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(out), -1) {
		if len(bytes.TrimSpace([]byte(doc))) == 0 {
			continue
		}
		if err := decodeManifest(m, "built/"+dir+".yaml", []byte(doc)); err != nil {
			t.Errorf("kustomize build k8s/%s document %d: %v", dir, i+1, err)
		}
	}
	return m
}

// TestK8sKustomizeBuild builds each kustomization the way `kubectl apply -k`
// does and checks what would reach the cluster: the image the kustomization
// sets, no replica count under the HPA, the release label on the
// ServiceMonitor but not in its selector, and the HTTPRoute.
func TestK8sKustomizeBuild(t *testing.T) {
	base := kustomizeBuild(t, ".")
	if len(base.deployments) != 1 {
		t.Fatalf("kustomize build k8s: %d Deployments, want 1", len(base.deployments))
	}
	dep := base.deployments[0]
	if got, want := dep.Spec.Template.Spec.Containers[0].Image, "ghcr.io/glasshouse-dev/glasshouse:0.1.0"; got != want {
		t.Errorf("built Deployment runs %s, want %s (kustomization.yaml images)", got, want)
	}
	if dep.Spec.Replicas != nil {
		t.Errorf("built Deployment sets replicas: %d; the HPA owns the count", *dep.Spec.Replicas)
	}
	if len(base.hpas) != 1 || len(base.netpols) != 1 || len(base.ingresses) != 1 {
		t.Errorf("kustomize build k8s: %d HPAs, %d NetworkPolicies, %d Ingresses, want 1 each", len(base.hpas), len(base.netpols), len(base.ingresses))
	}
	if len(base.secrets) != 0 {
		t.Error("kustomize build k8s emits a Secret; the example Secret must never be applied")
	}

	mon := kustomizeBuild(t, "monitoring")
	if len(mon.monitors) != 1 {
		t.Fatalf("kustomize build k8s/monitoring: %d ServiceMonitors, want 1", len(mon.monitors))
	}
	sm := mon.monitors[0]
	if sm.Metadata.Labels["release"] == "" {
		t.Errorf("built ServiceMonitor labels %v lack release (kube-prometheus-stack selects on it)", sm.Metadata.Labels)
	}
	if _, ok := sm.Spec.Selector.MatchLabels["release"]; ok {
		t.Error("the release label leaked into the ServiceMonitor's selector, so it selects no Service")
	}

	if gw := kustomizeBuild(t, "gateway"); len(gw.routes) != 1 {
		t.Errorf("kustomize build k8s/gateway: %d HTTPRoutes, want 1", len(gw.routes))
	}
}
