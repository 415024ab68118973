package contrib

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/fedora-infra/kojibot/config"
)

// TestOpenShiftTwoReplicas: contrib/openshift/kojibot.yaml is a Secret,
// whose kojibot.yaml loads and validates with the secret files beside it
// and puts the state in PostgreSQL, and a Deployment of two replicas with
// no volume but that Secret, probed on /healthz.
func TestOpenShiftTwoReplicas(t *testing.T) {
	raw, err := os.ReadFile("openshift/kojibot.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type object struct {
		Kind       string            `yaml:"kind"`
		StringData map[string]string `yaml:"stringData"`
		Data       map[string]string `yaml:"data"`
		Spec       struct {
			Replicas int `yaml:"replicas"`
			Template struct {
				Spec struct {
					Containers []struct {
						Args          []string `yaml:"args"`
						LivenessProbe struct {
							HTTPGet struct {
								Path string `yaml:"path"`
							} `yaml:"httpGet"`
						} `yaml:"livenessProbe"`
					} `yaml:"containers"`
					Volumes []map[string]any `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	objs := map[string]object{}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		objs[o.Kind] = o
	}
	secret, dep := objs["Secret"], objs["Deployment"]
	dir := t.TempDir()
	for name, v := range secret.StringData {
		if v == "" {
			v = "placeholder\n"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, v := range secret.Data {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(b) == 0 {
			b = []byte{0x05, 0x02} // a keytab's header
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(config.CredentialsEnv, "")
	os.Unsetenv(config.CredentialsEnv)
	cfg, err := config.Load(filepath.Join(dir, "kojibot.yaml"))
	if err != nil {
		t.Fatalf("the Secret's kojibot.yaml: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the Secret's kojibot.yaml: Validate: %v", err)
	}
	if cfg.State.DSN.Reveal() == "" {
		t.Error("the Secret's kojibot.yaml keeps the state in no PostgreSQL database (state.dsn_file)")
	}
	if cfg.HTTP.Listen == "" {
		t.Error("no http.listen: /healthz is not served")
	}
	if dep.Spec.Replicas != 2 {
		t.Errorf("replicas: %d, want 2", dep.Spec.Replicas)
	}
	vols := dep.Spec.Template.Spec.Volumes
	if len(vols) != 1 || vols[0]["secret"] == nil {
		t.Errorf("volumes: %v, want the Secret alone", vols)
	}
	cs := dep.Spec.Template.Spec.Containers
	if len(cs) != 1 || len(cs[0].Args) == 0 || cs[0].Args[0] != "run" || cs[0].LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("containers: %+v, want kojibot run probed on /healthz", cs)
	}
}
