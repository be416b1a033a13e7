package problem

import (
	"encoding/json"
	"errors"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

var allTypes = []Type{
	BadRequest, InvalidEvent, Unauthorized, Forbidden, NotFound, MethodNotAllowed,
	PayloadTooLarge, UnsupportedMediaType, RateLimited, Internal, BrokerUnavailable, Unavailable,
}

func TestTypes(t *testing.T) {
	doc := packageDoc(t)
	for _, typ := range allTypes {
		if typ.Status() < 400 || typ.Title() == "" || !strings.HasPrefix(string(typ), "https://hookwire.dev/problems/") {
			t.Errorf("%s: status %d, title %q", typ, typ.Status(), typ.Title())
		}
		// The package documentation, copied to the README, lists every type.
		line := string(typ) + " " // followed by padding
		i := strings.Index(doc, line)
		if i < 0 {
			t.Errorf("%s is not in the package documentation", typ)
			continue
		}
		rest := strings.TrimLeft(doc[i+len(line):], " ")
		if want := strconv.Itoa(typ.Status()) + " " + typ.Title() + ":"; !strings.HasPrefix(rest, want) {
			t.Errorf("documentation of %s reads %.40q, want %q", typ, rest, want)
		}
		p := typ.New("d")
		if want := (Details{Type: string(typ), Title: typ.Title(), Status: typ.Status(), Detail: "d"}); !reflect.DeepEqual(p, want) {
			t.Errorf("New = %+v, want %+v", p, want)
		}
	}
	if Blank.Status() != 0 || Blank.Title() != "" {
		t.Errorf("Blank has status %d, title %q", Blank.Status(), Blank.Title())
	}
}

func packageDoc(t *testing.T) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "problem.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	return f.Doc.Text()
}

func TestForStatus(t *testing.T) {
	tests := []struct {
		status int
		want   Details
	}{
		{400, Details{Type: string(BadRequest), Title: "Bad request", Status: 400, Detail: "x"}},
		{401, Details{Type: string(Unauthorized), Title: "Unauthorized", Status: 401, Detail: "x"}},
		{404, Details{Type: string(NotFound), Title: "Not found", Status: 404, Detail: "x"}},
		{405, Details{Type: string(MethodNotAllowed), Title: "Method not allowed", Status: 405, Detail: "x"}},
		{413, Details{Type: string(PayloadTooLarge), Title: "Payload too large", Status: 413, Detail: "x"}},
		{503, Details{Type: string(Unavailable), Title: "Service unavailable", Status: 503, Detail: "x"}},
		{408, Details{Type: "about:blank", Title: "Request Timeout", Status: 408, Detail: "x"}},
		{499, Details{Type: "about:blank", Title: "Status 499", Status: 499, Detail: "x"}},
	}
	for _, tt := range tests {
		if got := ForStatus(tt.status, "x"); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ForStatus(%d) = %+v, want %+v", tt.status, got, tt.want)
		}
	}
	for _, typ := range allTypes {
		if got := typeFor(typ.Status()); got.Status() != typ.Status() {
			t.Errorf("typeFor(%d) = %s", typ.Status(), got)
		}
	}
}

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("Retry-After", "3")
	p := InvalidEvent.New("users[0]: bad <user>")
	p.Errors = []FieldError{{Field: "users[0]", Reason: "bad <user>"}}
	p.RequestID = "rid"
	Write(rec, p)
	if rec.Code != 400 || rec.Header().Get("Content-Type") != ContentType || rec.Header().Get("Retry-After") != "3" {
		t.Errorf("got %d, headers %v", rec.Code, rec.Header())
	}
	want := `{"type":"https://hookwire.dev/problems/invalid-event","title":"Invalid event","status":400,"detail":"users[0]: bad <user>","errors":[{"field":"users[0]","reason":"bad <user>"}],"request_id":"rid"}` + "\n"
	if got := rec.Body.String(); got != want {
		t.Errorf("body\n%s\nwant\n%s", got, want)
	}
	if got, want := rec.Header().Get("Content-Length"), strconv.Itoa(len(want)); got != want {
		t.Errorf("Content-Length = %s, want %s", got, want)
	}

	rec = httptest.NewRecorder()
	Write(rec, Details{Title: "odd"})
	var back Details
	if err := json.Unmarshal(rec.Body.Bytes(), &back); err != nil || rec.Code != http.StatusInternalServerError || back.Status != 500 {
		t.Errorf("a problem without an error status: %d %s", rec.Code, rec.Body)
	}
}

func TestError(t *testing.T) {
	cause := errors.New("dial tcp: refused")
	err := error(Wrap(BrokerUnavailable.New("retry later"), cause))
	if !errors.Is(err, cause) {
		t.Error("Wrap does not unwrap to its cause")
	}
	var pe *Error
	if !errors.As(err, &pe) || pe.Details.Status != 503 {
		t.Errorf("errors.As = %+v", pe)
	}
	if got, want := err.Error(), "Broker unavailable: retry later: dial tcp: refused"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
