package helmtest

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const (
	chartDir  = "../helm/hookwire"
	manifests = "../k8s/hookwire.yaml"
)

var update = flag.Bool("update", false, "rewrite "+manifests+" from the chart at default values")

// manifestHeader starts deploy/k8s/hookwire.yaml.
const manifestHeader = `# hookwire's plain Kubernetes manifests: deploy/helm/hookwire rendered at its
# default values (release "hookwire"). Generated, do not edit: change the chart
# and run  cd deploy/helmtest && go test ./... -update
# deploy/helmtest checks that this file matches the chart.
#
# Create the Secret "hookwire" first (keys redis-url, api-keys, jwt-secret):
#   kubectl create secret generic hookwire \
#     --from-literal=redis-url=redis://:PASSWORD@redis:6379 \
#     --from-literal=api-keys="$(openssl rand -hex 32)" \
#     --from-literal=jwt-secret="$(openssl rand -hex 32)"
`

// render runs the chart as `helm template hookwire deploy/helm/hookwire`
// would, with vals over values.yaml.
func render(t *testing.T, vals map[string]any) (string, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(&action.Configuration{})
	install.ReleaseName = "hookwire"
	install.Namespace = "default"
	install.DryRun = true
	install.ClientOnly = true
	install.Replace = true
	install.KubeVersion = &chartutil.KubeVersion{Version: "v1.31.0", Major: "1", Minor: "31"}
	if vals == nil {
		vals = map[string]any{}
	}
	rel, err := install.Run(ch, vals)
	if err != nil {
		return "", err
	}
	return rel.Manifest, nil
}

// objects is a rendered chart decoded into the API types.
type objects struct {
	configMaps      []*corev1.ConfigMap
	services        []*corev1.Service
	serviceAccounts []*corev1.ServiceAccount
	deployments     []*appsv1.Deployment
	pdbs            []*policyv1.PodDisruptionBudget
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	ingresses       []*networkingv1.Ingress
	serviceMonitors []*monitoringv1.ServiceMonitor
	httpRoutes      []*gatewayv1.HTTPRoute
	kinds           []string
}

// decode splits a manifest into documents and decodes each strictly: an
// unknown or duplicate field, or an unexpected kind, fails the test.
func decode(t *testing.T, manifest string) *objects {
	t.Helper()
	o, err := decodeAll(manifest)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func decodeAll(manifest string) (*objects, error) {
	o := &objects{}
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(manifest, -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			return nil, fmt.Errorf("document %d: %v\n%s", i, err, doc)
		}
		var obj any
		gk := tm.APIVersion + " " + tm.Kind
		switch gk {
		case "v1 ConfigMap":
			v := &corev1.ConfigMap{}
			o.configMaps, obj = append(o.configMaps, v), v
		case "v1 Service":
			v := &corev1.Service{}
			o.services, obj = append(o.services, v), v
		case "v1 ServiceAccount":
			v := &corev1.ServiceAccount{}
			o.serviceAccounts, obj = append(o.serviceAccounts, v), v
		case "apps/v1 Deployment":
			v := &appsv1.Deployment{}
			o.deployments, obj = append(o.deployments, v), v
		case "policy/v1 PodDisruptionBudget":
			v := &policyv1.PodDisruptionBudget{}
			o.pdbs, obj = append(o.pdbs, v), v
		case "autoscaling/v2 HorizontalPodAutoscaler":
			v := &autoscalingv2.HorizontalPodAutoscaler{}
			o.hpas, obj = append(o.hpas, v), v
		case "networking.k8s.io/v1 Ingress":
			v := &networkingv1.Ingress{}
			o.ingresses, obj = append(o.ingresses, v), v
		case "monitoring.coreos.com/v1 ServiceMonitor":
			v := &monitoringv1.ServiceMonitor{}
			o.serviceMonitors, obj = append(o.serviceMonitors, v), v
		case "gateway.networking.k8s.io/v1 HTTPRoute":
			v := &gatewayv1.HTTPRoute{}
			o.httpRoutes, obj = append(o.httpRoutes, v), v
		default:
			return nil, fmt.Errorf("document %d: unexpected object %q (a Secret? secrets never come from the chart)\n%s", i, gk, doc)
		}
		// As the API server decodes: field names case-sensitive, unknown
		// and duplicate fields refused.
		j, err := yaml.YAMLToJSONStrict([]byte(doc))
		if err != nil {
			return nil, fmt.Errorf("document %d (%s): %v\n%s", i, gk, err, doc)
		}
		strict, err := kjson.UnmarshalStrict(j, obj)
		if err == nil && len(strict) > 0 {
			err = errors.Join(strict...)
		}
		if err != nil {
			return nil, fmt.Errorf("document %d (%s): %v\n%s", i, gk, err, doc)
		}
		o.kinds = append(o.kinds, tm.Kind)
	}
	return o, nil
}

// one returns the single element of s.
func one[T any](t *testing.T, what string, s []T) T {
	t.Helper()
	if len(s) != 1 {
		t.Fatalf("%d %s objects, want 1", len(s), what)
	}
	return s[0]
}

// secretEnv matches the variables that hold secrets.
var secretEnv = regexp.MustCompile(`SECRET|_KEYS?(_FILE)?$|PASSWORD|TOKEN|REDIS_URL`)

// check verifies the invariants every rendering must keep, and returns the
// Deployment's container.
func check(t *testing.T, o *objects, secretName string) {
	t.Helper()
	dep := one(t, "Deployment", o.deployments)
	svc := one(t, "Service", o.services)
	var cm *corev1.ConfigMap // the settings: the one the container takes its environment from
	for _, c := range o.configMaps {
		for _, ef := range dep.Spec.Template.Spec.Containers[0].EnvFrom {
			if ef.ConfigMapRef != nil && ef.ConfigMapRef.Name == c.Name {
				cm = c
			}
		}
	}
	if cm == nil {
		t.Fatalf("the container takes its settings from no ConfigMap of the chart")
	}
	if len(o.hpas) > 0 && dep.Spec.Replicas != nil {
		t.Errorf("Deployment sets replicas while an HPA owns the count")
	}

	// Labels and selectors agree.
	sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if err != nil || sel.Empty() {
		t.Fatalf("Deployment selector %v: %v", dep.Spec.Selector, err)
	}
	podLabels := labels.Set(dep.Spec.Template.Labels)
	if !sel.Matches(podLabels) {
		t.Errorf("Deployment selector %v does not match its pod labels %v", sel, podLabels)
	}
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("Service selector %v does not match the pod labels %v", svc.Spec.Selector, podLabels)
	}
	for _, pdb := range o.pdbs {
		s, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || s.Empty() || !s.Matches(podLabels) {
			t.Errorf("PodDisruptionBudget selector %v does not match the pod labels", pdb.Spec.Selector)
		}
		if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() < 1 {
			t.Errorf("PodDisruptionBudget maxUnavailable %v: want at least 1, or node drains block", pdb.Spec.MaxUnavailable)
		}
	}
	for _, hpa := range o.hpas {
		ref := hpa.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || ref.Name != dep.Name {
			t.Errorf("HPA scales %v, not the Deployment %s", ref, dep.Name)
		}
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas {
			t.Errorf("HPA min %v max %d: want min ≥ 2 (a drain needs another replica) and max ≥ min", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
		}
		if !slices.ContainsFunc(hpa.Spec.Metrics, func(m autoscalingv2.MetricSpec) bool {
			return m.Resource != nil && m.Resource.Name == corev1.ResourceCPU
		}) {
			t.Errorf("HPA has no CPU metric")
		}
	}
	for _, sm := range o.serviceMonitors {
		s, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil || s.Empty() || !s.Matches(labels.Set(svc.Labels)) {
			t.Errorf("ServiceMonitor selector %v does not match the Service's labels %v", sm.Spec.Selector, svc.Labels)
		}
		for _, ep := range sm.Spec.Endpoints {
			if ep.Port != "http" || ep.Path != "/metrics" {
				t.Errorf("ServiceMonitor endpoint port %q path %q, want http /metrics", ep.Port, ep.Path)
			}
		}
	}

	// The pod.
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if listen := cm.Data["HOOKWIRE_LISTEN"]; listen != fmt.Sprintf(":%d", ports["http"]) {
		t.Errorf("HOOKWIRE_LISTEN %q, but the http port is %d", listen, ports["http"])
	}
	for _, sp := range svc.Spec.Ports {
		if _, ok := ports[sp.TargetPort.String()]; !ok {
			t.Errorf("Service port %s targets %q, which the container does not name", sp.Name, sp.TargetPort.String())
		}
	}
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe: want an httpGet on %s", name, path)
			return
		}
		if p.HTTPGet.Path != path {
			t.Errorf("%s probe path %q, want %s", name, p.HTTPGet.Path, path)
		}
		if _, ok := ports[p.HTTPGet.Port.String()]; !ok && p.HTTPGet.Port.IntValue() != int(ports["http"]) {
			t.Errorf("%s probe port %s is not the container's http port", name, p.HTTPGet.Port.String())
		}
	}
	probe("readiness", c.ReadinessProbe, "/readyz")
	probe("liveness", c.LivenessProbe, "/healthz")

	// Grace period vs preStop + drain.
	drain, err := time.ParseDuration(cm.Data["HOOKWIRE_DRAIN_TIMEOUT"])
	if err != nil {
		t.Fatalf("ConfigMap HOOKWIRE_DRAIN_TIMEOUT %q: %v", cm.Data["HOOKWIRE_DRAIN_TIMEOUT"], err)
	}
	var preStop time.Duration
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds < 1 {
		t.Errorf("no preStop sleep: endpoints would still send connections to a draining pod")
	} else {
		preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	if pod.TerminationGracePeriodSeconds == nil {
		t.Errorf("terminationGracePeriodSeconds not set")
	} else if g := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second; g <= preStop+drain {
		t.Errorf("terminationGracePeriodSeconds %s ≤ preStop %s + HOOKWIRE_DRAIN_TIMEOUT %s", g, preStop, drain)
	}

	// Hardening.
	nonRoot := pod.SecurityContext != nil && pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot
	sc := c.SecurityContext
	if sc != nil && sc.RunAsNonRoot != nil {
		nonRoot = *sc.RunAsNonRoot
	}
	if !nonRoot {
		t.Errorf("the container may run as root")
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("the root filesystem is writable")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("privilege escalation allowed")
	}
	if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("capabilities not dropped")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
			t.Errorf("no %s request", r)
		}
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok || q.IsZero() {
		t.Errorf("no memory limit")
	}

	// Capacity during a deploy, and spread.
	ru := dep.Spec.Strategy.RollingUpdate
	if dep.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.String() != "0" {
		t.Errorf("strategy %+v: want RollingUpdate with maxUnavailable 0", dep.Spec.Strategy)
	}
	if ru != nil && ru.MaxSurge != nil && ru.MaxSurge.String() == "0" {
		t.Errorf("maxSurge 0 with maxUnavailable 0: a rollout cannot progress")
	}
	for _, tsc := range pod.TopologySpreadConstraints {
		s, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector)
		if err != nil || s.Empty() || !s.Matches(podLabels) {
			t.Errorf("topology spread on %s: selector %v does not match the pods", tsc.TopologyKey, tsc.LabelSelector)
		}
	}

	// No literal secret: every secret variable comes from secretName, as a
	// secretKeyRef or as a _FILE in a read-only mount of it.
	secretDirs := map[string]bool{}
	for _, v := range pod.Volumes {
		if v.Secret == nil {
			continue
		}
		if v.Secret.SecretName != secretName {
			t.Errorf("volume %s mounts the Secret %q, want %q", v.Name, v.Secret.SecretName, secretName)
		}
		for _, m := range c.VolumeMounts {
			if m.Name == v.Name {
				if !m.ReadOnly {
					t.Errorf("the Secret is mounted writable at %s", m.MountPath)
				}
				secretDirs[m.MountPath] = true
			}
		}
	}
	for _, e := range c.Env {
		if !secretEnv.MatchString(e.Name) {
			continue
		}
		if strings.HasSuffix(e.Name, "_FILE") {
			if !secretDirs[path.Dir(e.Value)] {
				t.Errorf("env %s=%q: not a file of a mounted Secret %v", e.Name, e.Value, secretDirs)
			}
			continue
		}
		ref := (*corev1.SecretKeySelector)(nil)
		if e.ValueFrom != nil {
			ref = e.ValueFrom.SecretKeyRef
		}
		if e.Value != "" || ref == nil || ref.Name != secretName || ref.Key == "" {
			t.Errorf("env %s: want a secretKeyRef to the Secret %q, got value %q from %+v", e.Name, secretName, e.Value, e.ValueFrom)
		}
	}
	for k := range cm.Data {
		if secretEnv.MatchString(k) {
			t.Errorf("the ConfigMap holds %s, a secret", k)
		}
	}
	if !slices.ContainsFunc(c.EnvFrom, func(s corev1.EnvFromSource) bool {
		return s.ConfigMapRef != nil && s.ConfigMapRef.Name == cm.Name
	}) {
		t.Errorf("the container does not take its settings from the ConfigMap %s", cm.Name)
	}

	// The sources file: mounted from its ConfigMap, and every secret it
	// names comes from the Secret.
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if e, ok := env["HOOKWIRE_SOURCES_FILE"]; ok {
		var file struct {
			Sources []struct {
				Name   string         `json:"name"`
				Verify map[string]any `json:"verify"`
			} `json:"sources"`
		}
		found := false
		for _, m := range c.VolumeMounts {
			if path.Dir(e.Value) != m.MountPath {
				continue
			}
			for _, v := range pod.Volumes {
				if v.Name != m.Name || v.ConfigMap == nil {
					continue
				}
				for _, scm := range o.configMaps {
					if scm.Name == v.ConfigMap.Name {
						raw, ok := scm.Data[path.Base(e.Value)]
						if !ok {
							t.Errorf("ConfigMap %s has no %s", scm.Name, path.Base(e.Value))
						}
						if err := yaml.Unmarshal([]byte(raw), &file); err != nil {
							t.Errorf("the sources file does not parse: %v\n%s", err, raw)
						}
						found = true
					}
				}
			}
		}
		if !found {
			t.Errorf("HOOKWIRE_SOURCES_FILE=%s is not a file of a mounted ConfigMap", e.Value)
		}
		for _, src := range file.Sources {
			if _, ok := src.Verify["secret"]; ok {
				t.Errorf("source %s holds a secret", src.Name)
			}
			if name, _ := src.Verify["secret_env"].(string); name != "" {
				if se, ok := env[name]; !ok || se.ValueFrom == nil || se.ValueFrom.SecretKeyRef == nil || se.ValueFrom.SecretKeyRef.Name != secretName {
					t.Errorf("source %s: secret_env %s is not set from the Secret %s", src.Name, name, secretName)
				}
			}
		}
	}

	// Routes reach the Service's http port.
	ping := 25 * time.Second
	if v := cm.Data["HOOKWIRE_PING_INTERVAL"]; v != "" {
		if ping, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	wsRouted := len(o.ingresses) == 0
	for _, ing := range o.ingresses {
		for _, rule := range ing.Spec.Rules {
			for _, p := range rule.HTTP.Paths {
				b := p.Backend.Service
				if b == nil || b.Name != svc.Name || b.Port.Name != "http" {
					t.Errorf("Ingress %s path %s: backend %+v, want the Service %s port http", ing.Name, p.Path, p.Backend, svc.Name)
				}
				if p.Path == "/v1/ws" {
					wsRouted = true
					for _, a := range []string{"proxy-read-timeout", "proxy-send-timeout"} {
						s, err := strconv.Atoi(ing.Annotations["nginx.ingress.kubernetes.io/"+a])
						if err != nil || time.Duration(s)*time.Second <= ping {
							t.Errorf("Ingress %s: %s %q, want seconds above HOOKWIRE_PING_INTERVAL %s", ing.Name, a, ing.Annotations["nginx.ingress.kubernetes.io/"+a], ping)
						}
					}
					if ing.Annotations["nginx.ingress.kubernetes.io/enable-access-log"] != "false" {
						t.Errorf("Ingress %s logs /v1/ws requests, whose URL carries the token", ing.Name)
					}
					if !strings.Contains(ing.Annotations["nginx.ingress.kubernetes.io/proxy-next-upstream"], "http_503") {
						t.Errorf("Ingress %s: a draining pod's 503 is not retried", ing.Name)
					}
				}
			}
		}
	}
	if !wsRouted {
		t.Errorf("no Ingress routes /v1/ws")
	}
	for _, r := range o.httpRoutes {
		for _, rule := range r.Spec.Rules {
			for _, b := range rule.BackendRefs {
				if string(b.Name) != svc.Name || b.Port == nil || int32(*b.Port) != svc.Spec.Ports[0].Port {
					t.Errorf("HTTPRoute %s: backend %s:%v, want the Service %s:%d", r.Name, b.Name, b.Port, svc.Name, svc.Spec.Ports[0].Port)
				}
			}
		}
	}
}

func TestChartDefaults(t *testing.T) {
	m, err := render(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := decode(t, m)
	check(t, o, "hookwire")
	for _, k := range []string{"ConfigMap", "Service", "ServiceAccount", "Deployment", "PodDisruptionBudget", "HorizontalPodAutoscaler"} {
		if !slices.Contains(o.kinds, k) {
			t.Errorf("the default rendering has no %s (got %v)", k, o.kinds)
		}
	}
	if len(o.serviceMonitors)+len(o.ingresses)+len(o.httpRoutes) != 0 {
		t.Errorf("ServiceMonitor, Ingress and HTTPRoute are off by default; got %v", o.kinds)
	}
	dep := o.deployments[0]
	if len(dep.Spec.Template.Spec.TopologySpreadConstraints) == 0 {
		t.Errorf("no topology spread by default")
	}
	t.Logf("default rendering: %v", o.kinds)

	want := manifestHeader + m
	if *update {
		if err := os.WriteFile(manifests, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(manifests)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte(want)) {
		t.Errorf("%s is not the chart rendered at default values: run  cd deploy/helmtest && go test ./... -update", manifests)
	}
}

func TestChartEverythingOn(t *testing.T) {
	vals := map[string]any{
		"fullnameOverride": "bridge",
		"image":            map[string]any{"tag": "1.2.3"},
		"config": map[string]any{
			"HOOKWIRE_PING_INTERVAL":   "40s",
			"HOOKWIRE_ALLOWED_ORIGINS": "https://app.example.com",
		},
		"secrets": map[string]any{
			"existingSecret":   "bridge-secrets",
			"webhookSecretKey": "webhook-secret",
			"extra":            map[string]any{"STRIPE_WEBHOOK_SECRET": "stripe"},
		},
		"drainTimeoutSeconds":           30,
		"preStopSleepSeconds":           10,
		"terminationGracePeriodSeconds": 45,
		"autoscaling":                   map[string]any{"minReplicas": 3, "maxReplicas": 50, "connections": map[string]any{"enabled": true}},
		"serviceMonitor":                map[string]any{"enabled": true, "labels": map[string]any{"release": "kube-prometheus-stack"}},
		"ingress":                       map[string]any{"enabled": true, "tlsSecretName": "hookwire-tls", "wsTimeoutSeconds": 90},
		"httpRoute":                     map[string]any{"enabled": true},
		"topologySpread":                map[string]any{"topologyKeys": []any{"kubernetes.io/hostname"}},
		"service":                       map[string]any{"port": 8080},
		"sources": []any{map[string]any{
			"name":   "stripe",
			"verify": map[string]any{"scheme": "stripe", "secret_env": "STRIPE_WEBHOOK_SECRET", "tolerance": "5m"},
			"rules": []any{map[string]any{
				"when": `body.type == "customer.updated"`, "type": `"balance.updated"`,
				"users": "[body.data.object.metadata.user_id]",
			}},
		}},
	}
	m, err := render(t, vals)
	if err != nil {
		t.Fatal(err)
	}
	o := decode(t, m)
	check(t, o, "bridge-secrets")
	for _, k := range []string{"ServiceMonitor", "Ingress", "HTTPRoute", "HorizontalPodAutoscaler"} {
		if !slices.Contains(o.kinds, k) {
			t.Errorf("no %s (got %v)", k, o.kinds)
		}
	}
	if len(o.ingresses) != 2 {
		t.Errorf("%d Ingress objects, want 2 (/v1/ws and the rest)", len(o.ingresses))
	}
	dep := o.deployments[0]
	if dep.Name != "bridge" || !strings.HasSuffix(dep.Spec.Template.Spec.Containers[0].Image, ":1.2.3") {
		t.Errorf("Deployment %s image %s", dep.Name, dep.Spec.Template.Spec.Containers[0].Image)
	}
	if g := *dep.Spec.Template.Spec.TerminationGracePeriodSeconds; g != 45 {
		t.Errorf("terminationGracePeriodSeconds %d, want 45", g)
	}
	if len(o.configMaps) != 2 {
		t.Errorf("%d ConfigMaps, want 2 (settings and sources)", len(o.configMaps))
	}
	for _, cm := range o.configMaps {
		if d := cm.Data["HOOKWIRE_DRAIN_TIMEOUT"]; cm.Name == "bridge" && d != "30s" {
			t.Errorf("HOOKWIRE_DRAIN_TIMEOUT %q, want 30s", d)
		}
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e
	}
	if _, ok := env["HOOKWIRE_SOURCES_FILE"]; !ok {
		t.Errorf("sources set, but no HOOKWIRE_SOURCES_FILE")
	}
	for name, file := range map[string]string{"HOOKWIRE_WEBHOOK_SECRET_FILE": "webhook-secret", "HOOKWIRE_JWT_SECRET_FILE": "jwt-secret",
		"HOOKWIRE_API_KEYS_FILE": "api-keys", "HOOKWIRE_REDIS_URL_FILE": "redis-url"} {
		if e, ok := env[name]; !ok || path.Base(e.Value) != file {
			t.Errorf("env %s: want the file %q of the mounted bridge-secrets, got %+v", name, file, e)
		}
	}
	if e, ok := env["STRIPE_WEBHOOK_SECRET"]; !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Key != "stripe" {
		t.Errorf("env STRIPE_WEBHOOK_SECRET: want the key stripe of bridge-secrets, got %+v", e)
	}
	hpa := o.hpas[0]
	if !slices.ContainsFunc(hpa.Spec.Metrics, func(m autoscalingv2.MetricSpec) bool {
		return m.Pods != nil && m.Pods.Metric.Name == "hookwire_connections" && m.Pods.Target.AverageValue != nil
	}) {
		t.Errorf("HPA has no hookwire_connections metric: %+v", hpa.Spec.Metrics)
	}
	if len(dep.Spec.Template.Spec.TopologySpreadConstraints) != 1 {
		t.Errorf("topology spread %v, want one constraint", dep.Spec.Template.Spec.TopologySpreadConstraints)
	}
	t.Logf("everything on: %v", o.kinds)
}

func TestChartFixedReplicas(t *testing.T) {
	m, err := render(t, map[string]any{"autoscaling": map[string]any{"enabled": false}, "replicaCount": 3,
		"secrets":             map[string]any{"asFiles": false, "webhookSecretKey": "wh"},
		"podDisruptionBudget": map[string]any{"enabled": false}, "topologySpread": map[string]any{"enabled": false}})
	if err != nil {
		t.Fatal(err)
	}
	o := decode(t, m)
	check(t, o, "hookwire")
	if len(o.hpas) != 0 || len(o.pdbs) != 0 {
		t.Errorf("HPA or PDB rendered while disabled: %v", o.kinds)
	}
	if r := o.deployments[0].Spec.Replicas; r == nil || *r != 3 {
		t.Errorf("replicas %v, want 3", r)
	}
	refs := map[string]string{}
	for _, e := range o.deployments[0].Spec.Template.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			refs[e.Name] = e.ValueFrom.SecretKeyRef.Key
		}
		if strings.HasSuffix(e.Name, "_FILE") {
			t.Errorf("secrets.asFiles false, but %s is set", e.Name)
		}
	}
	want := map[string]string{"HOOKWIRE_REDIS_URL": "redis-url", "HOOKWIRE_API_KEYS": "api-keys", "HOOKWIRE_JWT_SECRET": "jwt-secret", "HOOKWIRE_WEBHOOK_SECRET": "wh"}
	if !maps.Equal(refs, want) {
		t.Errorf("secretKeyRef variables %v, want %v", refs, want)
	}
}

// TestChartRefuses: values that would break a drain, cut idle sockets or
// put a secret into the ConfigMap do not render.
func TestChartRefuses(t *testing.T) {
	for name, c := range map[string]struct {
		vals map[string]any
		want string
	}{
		"grace below drain":     {map[string]any{"drainTimeoutSeconds": 30}, "terminationGracePeriodSeconds"},
		"grace equal":           {map[string]any{"terminationGracePeriodSeconds": 15}, "terminationGracePeriodSeconds"},
		"secret in config":      {map[string]any{"config": map[string]any{"HOOKWIRE_JWT_SECRET": "hunter2hunter2"}}, "secrets do not go into values"},
		"keys in config":        {map[string]any{"config": map[string]any{"HOOKWIRE_API_KEYS": "k"}}, "secrets do not go into values"},
		"redis url in config":   {map[string]any{"config": map[string]any{"HOOKWIRE_REDIS_URL": "redis://:pw@r:6379"}}, "secrets do not go into values"},
		"drain in config":       {map[string]any{"config": map[string]any{"HOOKWIRE_DRAIN_TIMEOUT": "5s"}}, "drainTimeoutSeconds"},
		"no secret name":        {map[string]any{"secrets": map[string]any{"existingSecret": ""}}, "existingSecret"},
		"ws timeout below ping": {map[string]any{"ingress": map[string]any{"enabled": true, "wsTimeoutSeconds": 20}}, "wsTimeoutSeconds"},
		"secret in a source":    {map[string]any{"sources": []any{map[string]any{"name": "s", "verify": map[string]any{"scheme": "hmac", "secret": "hunter2hunter2"}}}}, "secret"},
		"unmapped secret_env":   {map[string]any{"sources": []any{map[string]any{"name": "s", "verify": map[string]any{"scheme": "github", "secret_env": "GH_SECRET"}}}}, "GH_SECRET"},
		"misspelt value":        {map[string]any{"replicaCout": 3}, "replicaCout"},
		"drain as a duration":   {map[string]any{"drainTimeoutSeconds": "10s"}, "drainTimeoutSeconds"},
		"not a variable":        {map[string]any{"config": map[string]any{"log_level": "debug"}}, "log_level"},
		"ws timeout vs 1m ping": {map[string]any{"ingress": map[string]any{"enabled": true, "wsTimeoutSeconds": 60}, "config": map[string]any{"HOOKWIRE_PING_INTERVAL": "1m"}}, "wsTimeoutSeconds"},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := render(t, c.vals)
			if err == nil {
				t.Fatalf("rendered:\n%s", m)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error repeats the secret: %v", err)
			}
		})
	}
}

// TestStrictDecoding: the decoder the checks rely on refuses what the API
// server would drop or refuse.
func TestStrictDecoding(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field":   "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n",
		"misplaced field": "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports:\n    - port: 80\n      targetport: http\n",
		"duplicate field": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {A: a}\ndata: {B: b}\n",
		"wrong type":      "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: x}\nspec: {maxUnavailable: [1]}\n",
		"a Secret":        "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData: {k: v}\n",
		"unknown kind":    "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
	} {
		if _, err := decodeAll("---\n" + doc); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	if _, err := decodeAll("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {A: a}\n"); err != nil {
		t.Errorf("a valid ConfigMap: %v", err)
	}
}
