package sandbox

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// DSP is a sandbox demand-side platform: a real HTTP server on 127.0.0.1
// that accepts deal activations as dealflow's webhook activator
// (services/activator.Webhook) sends them — POST /activations with the
// JSON activation, an Idempotency-Key header and an HMAC-SHA256 signature
// over "<X-Dealflow-Timestamp>.<body>" in X-Dealflow-Signature — and sets
// each deal up once per idempotency key: a repeated key is answered with
// the activation it made (200, "replayed": true). Faults make the failure
// paths testable: refusing deals (422), failing the next activations (503)
// and answering slowly (after recording the activation, as a DSP whose
// answer a client stopped waiting for).
//
// It checks the signature with its own HMAC code, not dealflow's, so a
// test against it checks the wire format.
type DSP struct {
	// URL is where activations are POSTed (the activator's --dsp).
	URL string
	// BaseURL is the server's root.
	BaseURL string

	secret string
	srv    *http.Server
	now    func() time.Time

	mu     sync.Mutex
	faults DSPFaults
	byKey  map[string]*DSPActivation
	reqs   []DSPRequest
	seq    int
}

// DSPFaults are the sandbox DSP's fault knobs.
type DSPFaults struct {
	// Refuse answers 422 to every activation; RefuseDeals to those of
	// these deal ids only.
	Refuse      bool
	RefuseDeals map[string]bool
	// FailNext answers 503 to the next FailNext activations (then counts
	// down to 0).
	FailNext int
	// Slow answers each new activation after this long, once it is made.
	Slow time.Duration
}

// DSPActivation is one deal set up in the sandbox DSP.
type DSPActivation struct {
	ID             string
	IdempotencyKey string
	DealID         string
	SellerURL      string
	CampaignID     string
	Origin         string
	// Requests counts the requests that carried this key and reached it
	// (the first one and every replay).
	Requests int
	Body     json.RawMessage
	At       time.Time
}

// DSPRequest is one request the sandbox DSP received, and its answer.
type DSPRequest struct {
	IdempotencyKey string
	DealID         string
	Status         int
	SignatureOK    bool
	Time           time.Time
}

// StartDSP serves a sandbox DSP on a random 127.0.0.1 port; activations
// must be signed with secret.
func StartDSP(secret string) (*DSP, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sandbox DSP: %w", err)
	}
	d := &DSP{BaseURL: "http://" + ln.Addr().String(), secret: secret, now: time.Now, byKey: map[string]*DSPActivation{}}
	d.URL = d.BaseURL + "/activations"
	mux := http.NewServeMux()
	mux.HandleFunc("POST /activations", d.activate)
	mux.HandleFunc("GET /activations", d.list)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { writeDSP(w, 200, map[string]string{"status": "healthy"}) })
	d.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = d.srv.Serve(ln) }()
	return d, nil
}

// Close stops the server.
func (d *DSP) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := d.srv.Shutdown(ctx); err != nil {
		return d.srv.Close()
	}
	return nil
}

// SetFaults replaces the fault knobs.
func (d *DSP) SetFaults(f DSPFaults) {
	d.mu.Lock()
	d.faults = f
	d.mu.Unlock()
}

// Activations lists the deals set up, in the order they were.
func (d *DSP) Activations() []DSPActivation {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]DSPActivation, 0, len(d.byKey))
	for _, a := range d.byKey {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Requests lists every activation request received, and its answer.
func (d *DSP) Requests() []DSPRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]DSPRequest(nil), d.reqs...)
}

// dspSignature is "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
func dspSignature(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// dspMaxSkew is how far a signature's timestamp may be from the DSP's clock.
const dspMaxSkew = 5 * time.Minute

func (d *DSP) activate(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeDSP(w, 400, map[string]string{"error": "bad_request", "detail": "body unreadable or over 1 MiB"})
		return
	}
	key := r.Header.Get("Idempotency-Key")
	ts := r.Header.Get("X-Dealflow-Timestamp")
	sigOK := false
	if sec, err := strconv.ParseInt(ts, 10, 64); err == nil {
		skew := d.now().Sub(time.Unix(sec, 0))
		sigOK = skew < dspMaxSkew && skew > -dspMaxSkew &&
			hmac.Equal([]byte(r.Header.Get("X-Dealflow-Signature")), []byte(dspSignature(d.secret, ts, body)))
	}
	var a struct {
		IdempotencyKey string `json:"idempotency_key"`
		CampaignID     string `json:"campaign_id"`
		Origin         string `json:"origin"`
		Deal           struct {
			DealID    string `json:"deal_id"`
			SellerURL string `json:"seller_url"`
		} `json:"deal"`
	}
	decodeErr := json.Unmarshal(body, &a)
	d.mu.Lock()
	rec := DSPRequest{IdempotencyKey: key, DealID: a.Deal.DealID, SignatureOK: sigOK, Time: d.now()}
	answer := func(status int, v any) {
		rec.Status = status
		d.reqs = append(d.reqs, rec)
		d.mu.Unlock()
		writeDSP(w, status, v)
	}
	switch {
	case !sigOK:
		answer(401, map[string]string{"error": "bad_signature", "detail": "X-Dealflow-Signature does not verify, or X-Dealflow-Timestamp is not within 5 minutes"})
		return
	case decodeErr != nil || a.Deal.DealID == "":
		answer(400, map[string]string{"error": "bad_request", "detail": "the body is not an activation with deal.deal_id"})
		return
	case key == "" || key != a.IdempotencyKey:
		answer(400, map[string]string{"error": "bad_request", "detail": "Idempotency-Key must be given and equal the body's idempotency_key"})
		return
	}
	if prev := d.byKey[key]; prev != nil {
		prev.Requests++
		answer(200, map[string]any{"activation_id": prev.ID, "status": "active", "replayed": true})
		return
	}
	f := &d.faults
	switch {
	case f.FailNext > 0:
		f.FailNext--
		answer(503, map[string]string{"error": "unavailable", "detail": "the DSP is briefly unavailable"})
		return
	case f.Refuse || f.RefuseDeals[a.Deal.DealID]:
		answer(422, map[string]string{"error": "deal_refused", "detail": "deal " + a.Deal.DealID + " is not permitted for this seat"})
		return
	}
	d.seq++
	act := &DSPActivation{ID: fmt.Sprintf("dspact-%06d", d.seq), IdempotencyKey: key, DealID: a.Deal.DealID, SellerURL: a.Deal.SellerURL,
		CampaignID: a.CampaignID, Origin: a.Origin, Requests: 1, Body: append(json.RawMessage(nil), body...), At: d.now()}
	d.byKey[key] = act
	slow := f.Slow
	rec.Status = 201
	d.reqs = append(d.reqs, rec)
	d.mu.Unlock()
	if slow > 0 {
		select {
		case <-time.After(slow):
		case <-r.Context().Done():
			return
		}
	}
	writeDSP(w, 201, map[string]any{"activation_id": act.ID, "status": "active", "replayed": false})
}

func (d *DSP) list(w http.ResponseWriter, _ *http.Request) {
	acts := d.Activations()
	out := make([]map[string]any, 0, len(acts))
	for _, a := range acts {
		out = append(out, map[string]any{"activation_id": a.ID, "idempotency_key": a.IdempotencyKey, "deal_id": a.DealID,
			"seller_url": a.SellerURL, "campaign_id": a.CampaignID, "requests": a.Requests, "at": a.At.UTC().Format(time.RFC3339Nano)})
	}
	writeDSP(w, 200, map[string]any{"activations": out})
}

func writeDSP(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
