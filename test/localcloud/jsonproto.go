package localcloud

// The JSON 1.1 protocol of DMS and Secrets Manager: POST with
// X-Amz-Target: <Service>.<Operation> and a JSON body; errors carry their
// code in X-Amzn-Errortype and in "__type".

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
)

type jsonHandler func(in map[string]any) (any, *apiError)

func (s *Server) serveJSON(w http.ResponseWriter, r *http.Request, service, op string, handlers map[string]jsonHandler) {
	h, ok := handlers[op]
	if !ok {
		writeJSONError(w, http.StatusBadRequest, "UnknownOperationException", "local cloud: "+service+" operation "+op+" is not implemented")
		return
	}
	if code, ok := s.takeFault(op); ok {
		s.log.Info(service+" injected fault", "op", op, "code", code)
		writeJSONError(w, faultStatus(code), code, "Rate exceeded (injected by the local cloud)")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	in := map[string]any{}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			writeJSONError(w, http.StatusBadRequest, "SerializationException", err.Error())
			return
		}
	}
	out, apiErr := h(in)
	if apiErr != nil {
		s.log.Info(service, "op", op, "error", apiErr.code, "message", apiErr.message)
		writeJSONError(w, apiErr.status, apiErr.code, apiErr.message)
		return
	}
	if out == nil {
		out = map[string]any{}
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "InternalFailure", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", requestID())
	_, _ = w.Write(b)
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", code)
	w.Header().Set("X-Amzn-Requestid", requestID())
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"__type": code, "message": msg})
	_, _ = w.Write(b)
}

// epochTime marshals as JSON 1.1 timestamps do: seconds since the epoch.
type epochTime time.Time

func (t epochTime) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(time.Time(t).UnixMilli())/1000, 'f', 3, 64)), nil
}

func epoch(t time.Time) *epochTime {
	if t.IsZero() {
		return nil
	}
	e := epochTime(t)
	return &e
}

// JSON input helpers.

func jstr(in map[string]any, key string) string {
	v, _ := in[key].(string)
	return v
}

func jobj(in map[string]any, key string) map[string]any {
	v, _ := in[key].(map[string]any)
	return v
}

func jint(in map[string]any, key string) int {
	switch v := in[key].(type) {
	case float64:
		return int(v)
	case string:
		n, _ := strconv.Atoi(v)
		return n
	}
	return 0
}

type jsonFilter struct {
	Name   string
	Values []string
}

func jfilters(in map[string]any) []jsonFilter {
	raw, _ := in["Filters"].([]any)
	var out []jsonFilter
	for _, r := range raw {
		m, _ := r.(map[string]any)
		f := jsonFilter{Name: jstr(m, "Name")}
		vals, _ := m["Values"].([]any)
		for _, v := range vals {
			if s, ok := v.(string); ok {
				f.Values = append(f.Values, s)
			}
		}
		out = append(out, f)
	}
	return out
}

func jmatch(fs []jsonFilter, name string, value string) bool {
	for _, f := range fs {
		if f.Name != name {
			continue
		}
		ok := false
		for _, v := range f.Values {
			if v == value {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
