package sessionsapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"

	"github.com/kip-proxy/kip/internal/gateway"
	"github.com/kip-proxy/kip/internal/recording"
	"github.com/kip-proxy/kip/internal/sessions"
	sessionsv1alpha1 "github.com/kip-proxy/kip/pkg/apis/sessions/v1alpha1"
)

// GroupPath is the path prefix of the sessions.kip.dev API.
const GroupPath = "/apis/" + sessionsv1alpha1.GroupName

// WithSessions answers every request of the sessions.kip.dev group with
// api and hands everything else to h: the group is kip's own, and the
// upstream knows nothing of it.
func WithSessions(h, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isSessionsRequest(r) {
			api.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// isSessionsRequest reports whether r belongs to the group: by the request
// info the authorizer saw, or by its path, so that nothing of the group
// reaches the upstream whatever the resolver made of it.
func isSessionsRequest(r *http.Request) bool {
	if info, ok := request.RequestInfoFrom(r.Context()); ok && info.IsResourceRequest && info.APIGroup == sessionsv1alpha1.GroupName {
		return true
	}
	return r.URL.Path == GroupPath || strings.HasPrefix(r.URL.Path, GroupPath+"/")
}

// Handler serves the sessions.kip.dev API from a Store.
type Handler struct {
	store sessions.Store
	// cap bounds one list: maxLimit, less in tests.
	cap int
}

// New returns the API over store; a nil store, when kip records nothing,
// answers every request with 404.
func New(store sessions.Store) *Handler { return &Handler{store: store, cap: maxLimit} }

// maxLimit caps what one list returns, so a list cannot read the whole
// directory into one answer.
const maxLimit = 5000

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info, ok := request.RequestInfoFrom(r.Context())
	if !ok || !info.IsResourceRequest || info.APIGroup != sessionsv1alpha1.GroupName ||
		info.APIVersion != sessionsv1alpha1.SchemeGroupVersion.Version || info.Resource != sessionsv1alpha1.Resource {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "the server could not find the requested resource")
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed,
			fmt.Sprintf("recorded sessions are read-only: %s is not allowed, only GET", r.Method))
		return
	}
	if h.store == nil {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound,
			"this kip records no sessions: start it with --recording-dir to record and serve them")
		return
	}
	// A recording is evidence about one user's session: no shared cache
	// may keep it for another caller.
	w.Header().Set("Cache-Control", "no-cache, private")
	cluster, _ := gateway.ClusterFrom(r.Context())
	switch {
	case info.Verb == "list" && info.Subresource == "":
		h.list(w, r, info.Namespace, cluster)
	case info.Verb == "get" && info.Name != "" && info.Namespace != "":
		h.get(w, r, info, cluster)
	case info.Verb == "watch":
		writeStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed,
			"recorded sessions cannot be watched; list them")
	default:
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "the server could not find the requested resource")
	}
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request, namespace, cluster string) {
	f, err := filterOf(r.URL.Query(), h.cap)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
		return
	}
	f.Namespace, f.Cluster, f.ExactCluster = namespace, cluster, true
	capped := f.Limit == h.cap
	if capped {
		f.Limit++ // one more tells whether the cap cut the list
	}
	found, err := h.store.List(r.Context(), f)
	if err != nil {
		h.failed(w, r.Context(), "listing the recorded sessions", err)
		return
	}
	if capped && len(found) > h.cap {
		found = found[:h.cap]
		// client-go and kubectl show a Warning header to the user: a list
		// cut short must not pass for every session there was.
		w.Header().Add("Warning", fmt.Sprintf(`299 - "only the newest %d sessions are listed: narrow the list with since, until, user or pod"`, h.cap))
	}
	list := &sessionsv1alpha1.SessionList{
		TypeMeta: metav1.TypeMeta{APIVersion: sessionsv1alpha1.SchemeGroupVersion.String(), Kind: "SessionList"},
		Items:    make([]sessionsv1alpha1.Session, 0, len(found)),
	}
	for _, s := range found {
		list.Items = append(list.Items, Object(s))
	}
	responsewriters.WriteRawJSON(http.StatusOK, list, w)
}

// filterOf reads the list's query: user, pod, since, until (RFC 3339) and
// limit, which may only lower the limit kip sets.
func filterOf(q map[string][]string, limit int) (sessions.Filter, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	f := sessions.Filter{User: get("user"), Pod: get("pod"), Limit: limit}
	for _, b := range []struct {
		name string
		to   *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		v := get(b.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return f, fmt.Errorf("%s=%q is not an RFC 3339 time such as 2026-12-06T14:02:00Z", b.name, v)
		}
		*b.to = t
	}
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return f, fmt.Errorf("limit=%q is not a count of sessions", v)
		}
		if n > 0 && n < limit {
			f.Limit = n
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return f, fmt.Errorf("until (%s) is before since (%s)", f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339))
	}
	return f, nil
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request, info *request.RequestInfo, cluster string) {
	if info.Subresource != "" && info.Subresource != sessionsv1alpha1.RecordingSubresource {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "the server could not find the requested resource")
		return
	}
	notFound := func() {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound,
			fmt.Sprintf("sessions.%s %q not found", sessionsv1alpha1.GroupName, info.Name))
	}
	rc, sum, err := h.store.Open(r.Context(), info.Name)
	switch {
	case errors.Is(err, sessions.ErrNotFound), errors.Is(err, recording.ErrNotRecording):
		notFound()
		return
	case err != nil:
		h.failed(w, r.Context(), "reading the recorded session", err)
		return
	}
	defer func() { _ = rc.Close() }()
	// The grant was for this namespace (and cluster): a session of
	// another is as absent as one that never was.
	if sum.Namespace != info.Namespace || sum.Cluster != cluster {
		notFound()
		return
	}
	if info.Subresource == "" {
		s := Object(sum)
		responsewriters.WriteRawJSON(http.StatusOK, &s, w)
		return
	}
	w.Header().Set("Content-Type", sessionsv1alpha1.RecordingContentType)
	w.Header().Set("Content-Length", strconv.FormatInt(sum.Size, 10))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	// Size was read when the file was opened; a recording still being
	// written is served up to there, whole lines or not.
	if _, err := io.Copy(w, io.LimitReader(rc, sum.Size)); err != nil {
		klog.V(2).InfoS("Sending a recording stopped", "session", sum.SessionID, "err", err)
	}
}

// failed answers 500 for an error of the store, which is logged and not
// shown: it may name paths and buckets.
func (h *Handler) failed(w http.ResponseWriter, ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		writeStatus(w, http.StatusGatewayTimeout, metav1.StatusReasonTimeout, what+" took too long")
		return
	}
	klog.ErrorS(err, "The sessions API failed", "doing", what)
	writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError,
		what+" failed at kip; its log says why")
}

// Object is s as the API shows it.
func Object(s sessions.Summary) sessionsv1alpha1.Session {
	obj := sessionsv1alpha1.Session{
		TypeMeta: metav1.TypeMeta{APIVersion: sessionsv1alpha1.SchemeGroupVersion.String(), Kind: "Session"},
		ObjectMeta: metav1.ObjectMeta{
			Name: s.SessionID, Namespace: s.Namespace, CreationTimestamp: metav1.NewTime(s.Start),
		},
		Spec: sessionsv1alpha1.SessionSpec{
			User: s.User, Caller: s.Caller, UID: s.UID, Groups: s.Groups, Cluster: s.Cluster,
			Pod: s.Pod, Container: s.Container, Subresource: s.Subresource, Command: s.Command,
			TTY: s.TTY, Replica: s.Replica, AuditID: s.AuditID,
		},
		Status: sessionsv1alpha1.SessionStatus{
			Start: metav1.NewTime(s.Start), Sealed: s.Sealed, SealKey: s.SealKey, Size: s.Size,
		},
	}
	if !s.End.IsZero() {
		end := metav1.NewTime(s.End)
		obj.Status.End = &end
	}
	if pf := s.PortForward; pf != nil {
		obj.Status.PortForward = &sessionsv1alpha1.PortForwardStatus{Ports: pf.Ports, FromClient: pf.FromClient, ToClient: pf.ToClient}
	}
	return obj
}

// writeStatus answers with a Status, as the API server would.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	status := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg,
	}
	responsewriters.WriteRawJSON(code, status, w)
}
