package sources

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
)

// CostLimit bounds the evaluation of one rule expression on one payload,
// in CEL cost units (about one per operation, a list or string counted by
// its length). Past it the rule fails for that payload.
const CostLimit = 1_000_000

// maxData bounds the data a rule makes, as JSON.
const maxData = 1 << 20

// maxValueDepth bounds the nesting of a rule's data.
const maxValueDepth = 64

var (
	envOnce sync.Once
	celEnv  *cel.Env
	envErr  error
)

// ruleEnv is the CEL environment of every rule: the variables body (any
// JSON value), headers (lower-case names to values) and source, the
// standard library, optional field selection (body.?a.orValue(x)) and the
// strings, encoders, lists, sets and math extensions. Nothing in it does
// I/O or reads the clock.
func ruleEnv() (*cel.Env, error) {
	envOnce.Do(func() {
		celEnv, envErr = cel.NewEnv(
			cel.Variable("body", cel.DynType),
			cel.Variable("headers", cel.MapType(cel.StringType, cel.StringType)),
			cel.Variable("source", cel.StringType),
			cel.OptionalTypes(),
			cel.CrossTypeNumericComparisons(true),
			ext.Strings(),
			ext.Encoders(),
			ext.Lists(),
			ext.Sets(),
			ext.Math(),
		)
	})
	return celEnv, envErr
}

// kind is what a rule field's expression must yield.
type kind int

const (
	kindBool kind = iota
	kindString
	kindUsers // list(string), or one string
	kindAny
)

// expr is one compiled rule field.
type expr struct {
	field string
	prg   cel.Program
	kind  kind
}

// compile compiles and type-checks src as field, which must yield k.
func compile(env *cel.Env, field, src string, k kind) (*expr, error) {
	if len(src) > maxExprLen {
		return nil, fmt.Errorf("%s: the expression is longer than %d bytes", field, maxExprLen)
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, fmt.Errorf("%s: %s", field, oneLine(iss.Err().Error()))
	}
	if err := checkType(ast.OutputType(), k); err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	prg, err := env.Program(ast, cel.CostLimit(CostLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("%s: %s", field, oneLine(err.Error()))
	}
	return &expr{field: field, prg: prg, kind: k}, nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// checkType accepts an expression of the wanted type, or one whose type
// is only known at run time (dyn, as anything read from body is).
func checkType(t *types.Type, k kind) error {
	if t.Kind() == types.DynKind {
		return nil
	}
	switch k {
	case kindBool:
		if t.IsExactType(types.BoolType) {
			return nil
		}
		return fmt.Errorf("must be a bool, not %s", t)
	case kindString:
		if t.IsExactType(types.StringType) {
			return nil
		}
		return fmt.Errorf("must be a string, not %s", t)
	case kindUsers:
		if t.IsExactType(types.StringType) {
			return nil
		}
		if t.Kind() == types.ListKind {
			if p := t.Parameters(); len(p) == 1 && (p[0].Kind() == types.DynKind || p[0].IsExactType(types.StringType)) {
				return nil
			}
		}
		return fmt.Errorf("must be a list of strings, not %s", t)
	}
	return nil
}

// eval evaluates e against vars.
func (e *expr) eval(vars map[string]any) (ref.Val, error) {
	out, _, err := e.prg.Eval(vars)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", e.field, oneLine(err.Error()))
	}
	return out, nil
}

func (e *expr) evalBool(vars map[string]any) (bool, error) {
	v, err := e.eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("%s: is a %s, not a bool", e.field, v.Type().TypeName())
	}
	return bool(b), nil
}

func (e *expr) evalString(vars map[string]any) (string, error) {
	v, err := e.eval(vars)
	if err != nil {
		return "", err
	}
	s, ok := v.(types.String)
	if !ok {
		return "", fmt.Errorf("%s: is a %s, not a string", e.field, v.Type().TypeName())
	}
	return string(s), nil
}

func (e *expr) evalUsers(vars map[string]any) ([]string, error) {
	v, err := e.eval(vars)
	if err != nil {
		return nil, err
	}
	if s, ok := v.(types.String); ok {
		return []string{string(s)}, nil
	}
	l, ok := v.(traits.Lister)
	if !ok {
		return nil, fmt.Errorf("%s: is a %s, not a list of strings", e.field, v.Type().TypeName())
	}
	n, ok := l.Size().(types.Int)
	if !ok || n < 0 {
		return nil, fmt.Errorf("%s: has no size", e.field)
	}
	if n > 1000 {
		return nil, fmt.Errorf("%s: has %d elements, more than 1000", e.field, n)
	}
	out := make([]string, 0, n)
	for i := types.Int(0); i < n; i++ {
		s, ok := l.Get(i).(types.String)
		if !ok {
			return nil, fmt.Errorf("%s[%d]: is a %s, not a string", e.field, i, l.Get(i).Type().TypeName())
		}
		out = append(out, string(s))
	}
	return out, nil
}

// evalJSON evaluates e and encodes its value as JSON.
func (e *expr) evalJSON(vars map[string]any) (json.RawMessage, error) {
	v, err := e.eval(vars)
	if err != nil {
		return nil, err
	}
	nat, err := toJSONValue(v, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.field, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(nat); err != nil {
		return nil, fmt.Errorf("%s: %w", e.field, err)
	}
	out := bytes.TrimRight(buf.Bytes(), "\n")
	if len(out) > maxData {
		return nil, fmt.Errorf("%s: the value is %d bytes of JSON, more than %d", e.field, len(out), maxData)
	}
	return out, nil
}

// toJSONValue turns a CEL value into a value encoding/json encodes as the
// JSON it stands for: integers stay exact (json.Number), bytes become
// base64, timestamps RFC 3339 and durations Go duration strings.
func toJSONValue(v ref.Val, depth int) (any, error) {
	if depth > maxValueDepth {
		return nil, fmt.Errorf("nested more than %d levels", maxValueDepth)
	}
	switch x := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(x), nil
	case types.Int:
		return json.Number(strconv.FormatInt(int64(x), 10)), nil
	case types.Uint:
		return json.Number(strconv.FormatUint(uint64(x), 10)), nil
	case types.Double:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, errors.New("NaN and infinities are not JSON")
		}
		return f, nil
	case types.String:
		return string(x), nil
	case types.Bytes:
		return base64.StdEncoding.EncodeToString(x), nil
	case types.Timestamp:
		return x.Time.UTC().Format(time.RFC3339Nano), nil
	case types.Duration:
		return x.Duration.String(), nil
	case *types.Optional:
		if !x.HasValue() {
			return nil, nil
		}
		return toJSONValue(x.GetValue(), depth+1)
	case *types.Err:
		return nil, x
	}
	if v.Type() == types.NullType {
		return nil, nil
	}
	if m, ok := v.(traits.Mapper); ok {
		out := map[string]any{}
		it := m.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("a map key is a %s, not a string", k.Type().TypeName())
			}
			val, err := toJSONValue(m.Get(k), depth+1)
			if err != nil {
				return nil, err
			}
			out[string(ks)] = val
		}
		return out, nil
	}
	if l, ok := v.(traits.Lister); ok {
		n, _ := l.Size().(types.Int)
		out := make([]any, 0, n)
		for i := types.Int(0); i < n; i++ {
			val, err := toJSONValue(l.Get(i), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, val)
		}
		return out, nil
	}
	return nil, fmt.Errorf("a %s is not a JSON value", v.Type().TypeName())
}

// parseBody decodes a JSON body for the rules: objects become
// map[string]any, arrays []any, integers that fit int64 stay exact.
func parseBody(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errors.New("the body is not JSON")
	}
	if dec.More() {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return numbers(v), nil
}

// numbers replaces the json.Numbers of v in place by int64 or float64.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}
