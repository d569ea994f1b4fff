package sandbox

import (
	"net/http"
	"strings"
)

// router matches FastAPI-style routes with {param} segments and answers
// FastAPI's JSON 404/405 bodies (http.ServeMux answers plain text).
type router struct {
	routes []route
}

type route struct {
	method string
	parts  []string
	h      http.HandlerFunc
}

func (rt *router) handle(method, pattern string, h http.HandlerFunc) {
	rt.routes = append(rt.routes, route{method: method, parts: splitPath(pattern), h: h})
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// ServeHTTP dispatches in registration order (literal routes first).
func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := splitPath(r.URL.Path)
	pathMatched := false
	for _, ro := range rt.routes {
		vals, ok := matchParts(ro.parts, parts)
		if !ok {
			continue
		}
		pathMatched = true
		if ro.method != r.Method && !(ro.method == http.MethodGet && r.Method == http.MethodHead) {
			continue
		}
		for k, v := range vals {
			r.SetPathValue(k, v)
		}
		ro.h(w, r)
		return
	}
	if pathMatched {
		writeDetail(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	writeDetail(w, http.StatusNotFound, "Not Found")
}

func matchParts(pattern, path []string) (map[string]string, bool) {
	if len(pattern) != len(path) {
		return nil, false
	}
	var vals map[string]string
	for i, p := range pattern {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if path[i] == "" {
				return nil, false
			}
			if vals == nil {
				vals = map[string]string{}
			}
			vals[p[1:len(p)-1]] = path[i]
			continue
		}
		if p != path[i] {
			return nil, false
		}
	}
	return vals, true
}
