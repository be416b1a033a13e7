package helmtest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestRenderedPodRuns starts the real hookwire binary the way the kubelet
// would start the rendered pod: its ConfigMap and env (secretKeyRef values
// and the mounted Secret's files filled in with test secrets, $(VAR)
// expanded), the image's entrypoint (`/hookwire serve`). So the variable
// names, the _FILE paths and the probes are checked against the program,
// not only against the Kubernetes types, and the drain is timed against
// the grace period.
func TestRenderedPodRuns(t *testing.T) {
	bin := hookwireBinary(t)
	redisURL := startRedis(t)
	for name, vals := range map[string]map[string]any{
		"secrets as files": nil,
		"secretKeyRef":     {"secrets": map[string]any{"asFiles": false}},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := render(t, vals)
			if err != nil {
				t.Fatal(err)
			}
			o := decode(t, m)
			runPod(t, bin, redisURL, one(t, "Deployment", o.deployments).Spec.Template.Spec, one(t, "ConfigMap", o.configMaps))
		})
	}
}

const podName = "hookwire-7d9f8-abcde"

// testSecrets are the values of the Secret "hookwire" in this test, by key.
func testSecrets(redisURL string) map[string]string {
	return map[string]string{
		"redis-url":  redisURL,
		"api-keys":   "pod-test-key-0123456789abcdef",
		"jwt-secret": "pod-test-jwt-secret-0123456789abcdef0123456789",
	}
}

func runPod(t *testing.T, bin, redisURL string, pod corev1.PodSpec, cm *corev1.ConfigMap) {
	secrets := testSecrets(redisURL)
	c := pod.Containers[0]
	if len(c.Command) > 0 || len(c.Args) > 0 {
		t.Fatalf("command %v args %v: the image's entrypoint is /hookwire serve", c.Command, c.Args)
	}

	// The Secret volume's files, in a temp dir standing for its mount.
	dir := t.TempDir()
	mounts := map[string]string{} // mount path -> local dir
	for _, v := range pod.Volumes {
		if v.Secret == nil {
			continue
		}
		local := filepath.Join(dir, v.Name)
		if err := os.Mkdir(local, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, it := range v.Secret.Items {
			val, ok := secrets[it.Key]
			if !ok {
				t.Fatalf("the Secret has no key %q", it.Key)
			}
			if err := os.WriteFile(filepath.Join(local, it.Path), []byte(val+"\n"), 0o400); err != nil {
				t.Fatal(err)
			}
		}
		for _, vm := range c.VolumeMounts {
			if vm.Name == v.Name {
				mounts[vm.MountPath] = local
			}
		}
	}

	// The environment the kubelet gives the container: envFrom, then env
	// in order with $(VAR) references to earlier variables expanded.
	env := map[string]string{}
	for k, v := range cm.Data {
		env[k] = v
	}
	for _, e := range c.Env {
		val := e.Value
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			val = podName
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			var ok bool
			if val, ok = secrets[e.ValueFrom.SecretKeyRef.Key]; !ok {
				t.Fatalf("env %s: the Secret has no key %q", e.Name, e.ValueFrom.SecretKeyRef.Key)
			}
		case e.ValueFrom != nil:
			t.Fatalf("env %s: unhandled valueFrom %+v", e.Name, e.ValueFrom)
		}
		val = os.Expand(strings.NewReplacer("$(", "${", ")", "}").Replace(val), func(k string) string { return env[k] })
		for mount, local := range mounts {
			if strings.HasPrefix(val, mount+"/") {
				val = local + strings.TrimPrefix(val, mount)
			}
		}
		env[e.Name] = val
	}
	// Not :8080 on this machine.
	port := freePort(t)
	env["HOOKWIRE_LISTEN"] = "127.0.0.1:" + strconv.Itoa(port)
	environ := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}

	cmd := exec.Command(bin, "serve")
	cmd.Env = environ
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("hookwire's log:\n%s", logs.String())
		}
	})

	// The probes, as the kubelet sends them.
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	get := func(p *corev1.Probe) int {
		resp, err := http.Get(base + p.HTTPGet.Path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for deadline := time.Now().Add(20 * time.Second); get(c.ReadinessProbe) != http.StatusOK; time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("hookwire exited with the rendered configuration: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness probe %s never 200", c.ReadinessProbe.HTTPGet.Path)
		}
	}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.StartupProbe} {
		if st := get(p); st != http.StatusOK {
			t.Errorf("probe %s: %d", p.HTTPGet.Path, st)
		}
	}

	// Production mode with the Secret's keys: a publisher key works, a
	// wrong one does not.
	post := func(key string) int {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/events", strings.NewReader(`{"type":"pod.check","users":["42"],"data":{}}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := post(secrets["api-keys"]); st != http.StatusAccepted {
		t.Errorf("POST with the Secret's key: %d, want 202", st)
	}
	if st := post("not-the-key-0123456789"); st != http.StatusUnauthorized {
		t.Errorf("POST with another key: %d, want 401", st)
	}
	if !strings.Contains(logs.String(), `"instance":"`+podName+`"`) {
		t.Errorf("the log does not name the pod (service.instance.id from OTEL_RESOURCE_ATTRIBUTES)")
	}
	if !strings.Contains(logs.String(), `"broker":"redis"`) {
		t.Errorf("not on Redis: HOOKWIRE_REDIS_URL not taken")
	}
	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the log holds a secret")
		}
	}

	// The kubelet's stop: preStop sleep (skipped here), SIGTERM, and the
	// rest of the grace period before SIGKILL.
	grace := time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second - time.Duration(c.Lifecycle.PreStop.Sleep.Seconds)*time.Second
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	// The signal takes a moment to arrive; the listener stays open through
	// the start of the drain so that probes see the 503.
	st := get(c.ReadinessProbe)
	for deadline := time.Now().Add(time.Second); st == http.StatusOK && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		st = get(c.ReadinessProbe)
	}
	if st != http.StatusServiceUnavailable {
		t.Errorf("readiness during the drain: %d, want 503", st)
	}
	select {
	case <-exited:
		took := time.Since(start)
		t.Logf("exited %s after SIGTERM; the grace period leaves %s", took.Round(time.Millisecond), grace)
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("exit code %d", code)
		}
	case <-time.After(grace):
		t.Errorf("still running %s after SIGTERM: the kubelet would SIGKILL it", grace)
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string // removed by TestMain
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// hookwireBinary builds ../../cmd/hookwire once per run.
func hookwireBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hookwire-helmtest")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		binPath = filepath.Join(dir, "hookwire")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/hookwire")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/hookwire: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// startRedis runs a throwaway redis-server on a free loopback port.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed")
		}
		t.Skip("redis-server is not installed")
	}
	port := freePort(t)
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "redis://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not listen")
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestChartVariablesExist: every HOOKWIRE_ variable the chart sets, at
// default and non-default values, is one `hookwire serve` knows (its -h
// names each flag's variable); a misspelt one would be silently ignored.
func TestChartVariablesExist(t *testing.T) {
	bin := hookwireBinary(t)
	help, _ := exec.Command(bin, "serve", "-h").CombinedOutput()
	known := map[string]bool{}
	for _, f := range strings.FieldsFunc(string(help), func(r rune) bool { return r == '(' || r == ')' || r == ' ' || r == '\n' || r == ';' }) {
		if v, ok := strings.CutPrefix(f, "$"); ok && strings.HasPrefix(v, "HOOKWIRE_") {
			known[v] = true
		}
	}
	if len(known) < 10 {
		t.Fatalf("found %d variables in `hookwire serve -h`:\n%s", len(known), help)
	}
	for name, vals := range map[string]map[string]any{
		"defaults":  nil,
		"keyRef":    {"secrets": map[string]any{"asFiles": false, "webhookSecretKey": "wh"}},
		"all files": {"secrets": map[string]any{"webhookSecretKey": "wh"}},
	} {
		m, err := render(t, vals)
		if err != nil {
			t.Fatal(err)
		}
		o := decode(t, m)
		vars := []string{}
		for k := range one(t, "ConfigMap", o.configMaps).Data {
			vars = append(vars, k)
		}
		for _, e := range o.deployments[0].Spec.Template.Spec.Containers[0].Env {
			vars = append(vars, e.Name)
		}
		for _, v := range vars {
			if strings.HasPrefix(v, "HOOKWIRE_") && !known[v] {
				t.Errorf("%s: the chart sets %s, which hookwire serve does not read", name, v)
			}
		}
	}
}
