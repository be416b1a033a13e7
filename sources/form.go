package sources

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// mediaForm is the media type of a form body: Slack's slash commands and
// interactivity, GitHub's "application/x-www-form-urlencoded" content type.
const mediaForm = "application/x-www-form-urlencoded"

// formPayload is the field in which Slack's interactivity (and GitHub in
// its form content type) sends a JSON payload.
const formPayload = "payload"

// isForm reports whether h's Content-Type says the body is a form. Any
// source takes one: which parsing applies is the request's media type,
// as the provider states it, not the scheme. The signature has been
// checked over the raw bytes before.
func isForm(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && strings.EqualFold(mt, mediaForm)
}

// parseForm decodes a form body for the rules: an object of its fields,
// the first value of each, a payload field that holds a JSON object
// decoded into that object (other values stay strings). data is that
// object as JSON, the events' default data. Field names and values must
// be UTF-8 once percent-decoded.
func parseForm(body []byte) (parsed map[string]any, data []byte, err error) {
	if !utf8.Valid(body) {
		return nil, nil, errors.New("the form body must be UTF-8")
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		// Its text would quote the body: say what is wrong instead.
		return nil, nil, errors.New("the form body is not application/x-www-form-urlencoded (bad percent-encoding, or ';' between fields)")
	}
	parsed = make(map[string]any, len(vals))
	raw := make(map[string]json.RawMessage, len(vals))
	for k, vs := range vals {
		v := vs[0]
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, nil, errors.New("the form's fields must be UTF-8 once percent-decoded")
		}
		if k == formPayload {
			if obj, ok := jsonObject(v); ok {
				parsed[k] = obj
				raw[k] = json.RawMessage(v)
				continue
			}
		}
		parsed[k] = v
		s, _ := json.Marshal(v) // a valid UTF-8 string cannot fail
		raw[k] = s
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(raw); err != nil {
		// raw holds checked JSON only.
		return nil, nil, errors.New("the form cannot be represented as JSON")
	}
	return parsed, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// jsonObject decodes s when it is one JSON object, as parseBody does.
func jsonObject(s string) (map[string]any, bool) {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "{") {
		return nil, false
	}
	v, err := parseBody([]byte(t))
	if err != nil {
		return nil, false
	}
	obj, ok := v.(map[string]any)
	return obj, ok
}
