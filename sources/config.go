package sources

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/oasdiff/yaml"
)

// The file format (CONTRACT.md §6):
//
//	sources:
//	  - name: stripe
//	    verify:
//	      scheme: stripe
//	      secret_env: STRIPE_WEBHOOK_SECRET      # or a list, for rotation
//	      tolerance: 5m
//	    rules:
//	      - name: balance                         # optional, [a-z0-9._-]{1,64}
//	        when: 'body.type == "customer.updated"'
//	        type: '"balance.updated"'
//	        users: '[body.data.object.metadata.user_id]'
//
// secret_env and secret_file each take one name or a list; a secret file
// holds one secret per non-blank line (lines starting with '#' skipped), so
// a file can carry the old and the new secret while a provider rotates.

type fileConfig struct {
	Sources []sourceConfig `json:"sources"`
}

type sourceConfig struct {
	Name   string       `json:"name"`
	Verify verifyConfig `json:"verify"`
	Rules  []ruleConfig `json:"rules"`
}

type verifyConfig struct {
	Scheme     string          `json:"scheme"`
	SecretEnv  stringList      `json:"secret_env"`
	SecretFile stringList      `json:"secret_file"`
	Tolerance  json.RawMessage `json:"tolerance"`
	// hmac only.
	Header    string `json:"header"`
	Algorithm string `json:"algorithm"`
	Encoding  string `json:"encoding"`
	Prefix    string `json:"prefix"`
	IDHeader  string `json:"id_header"`
}

type ruleConfig struct {
	Name    string `json:"name"`
	When    string `json:"when"`
	Type    string `json:"type"`
	Users   string `json:"users"`
	Channel string `json:"channel"`
	Data    string `json:"data"`
	ID      string `json:"id"`
}

// stringList is a YAML string or list of strings.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = stringList{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return errors.New("must be a string or a list of strings")
	}
	*l = ss
	return nil
}

// Limits of a sources file.
const (
	maxFileSize    = 1 << 20
	maxSecretFile  = 64 << 10
	maxSources     = 1000
	maxRules       = 100
	maxExprLen     = 4096
	maxTolerance   = 24 * time.Hour
	maxSecretCount = 16
)

// DefaultTolerance is how far a signed timestamp may be from now, in either
// direction, unless a source sets tolerance.
const DefaultTolerance = 5 * time.Minute

var (
	nameRE     = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)
	ruleNameRE = regexp.MustCompile(`^[a-z0-9._-]{1,64}$`)
	headerRE   = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+.^_|~-]{1,128}$`)
	envNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
)

// readFile returns the content of path, at most max bytes.
func readFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return data, nil
}

// parseFile decodes a sources file strictly: unknown or repeated fields
// are errors.
func parseFile(data []byte) (*fileConfig, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("the file is empty")
	}
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	var fc fileConfig
	if err := dec.Decode(&fc); err != nil {
		return nil, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return nil, errors.New("more than one document")
	}
	return &fc, nil
}

// secretSource reads the secrets of a source.
type secretSource struct {
	getenv func(string) string
	skip   bool
}

// secrets returns the secrets named by v, in order, and the bytes they
// were read from (for the change digest).
func (s secretSource) secrets(v verifyConfig) ([]string, error) {
	if len(v.SecretEnv) == 0 && len(v.SecretFile) == 0 {
		return nil, errors.New("verify: secret_env or secret_file is required")
	}
	var out []string
	for _, name := range v.SecretEnv {
		if !envNameRE.MatchString(name) {
			return nil, fmt.Errorf("verify.secret_env: %q is not an environment variable name", name)
		}
		if s.skip {
			continue
		}
		val := strings.TrimSpace(s.getenv(name))
		if val == "" {
			return nil, fmt.Errorf("verify.secret_env: %s is not set", name)
		}
		out = append(out, val)
	}
	for _, path := range v.SecretFile {
		if path == "" {
			return nil, errors.New("verify.secret_file: empty path")
		}
		if s.skip {
			continue
		}
		data, err := readFile(path, maxSecretFile)
		if err != nil {
			return nil, fmt.Errorf("verify.secret_file: %w", err)
		}
		n := 0
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			out = append(out, line)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("verify.secret_file: %s holds no secret", path)
		}
	}
	if len(out) > maxSecretCount {
		return nil, fmt.Errorf("verify: more than %d secrets", maxSecretCount)
	}
	return out, nil
}

// tolerance returns v's tolerance for a scheme that has timestamps: a
// duration such as "5m", or a number of seconds.
func tolerance(v verifyConfig, timestamped bool) (time.Duration, error) {
	if len(v.Tolerance) == 0 || string(v.Tolerance) == "null" {
		return DefaultTolerance, nil
	}
	if !timestamped {
		return 0, fmt.Errorf("verify.tolerance: the %s scheme has no timestamp", v.Scheme)
	}
	var (
		d   time.Duration
		err error
		s   string
		n   int64
	)
	switch {
	case json.Unmarshal(v.Tolerance, &s) == nil:
		d, err = time.ParseDuration(s)
	case json.Unmarshal(v.Tolerance, &n) == nil:
		d = time.Duration(n) * time.Second
	default:
		err = errors.New("not a duration")
	}
	if err != nil {
		return 0, fmt.Errorf("verify.tolerance: %s is not a duration such as 5m", v.Tolerance)
	}
	if d <= 0 || d > maxTolerance {
		return 0, fmt.Errorf("verify.tolerance: must be more than 0 and at most %s", maxTolerance)
	}
	return d, nil
}
