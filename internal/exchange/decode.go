package exchange

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"

	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// MaxBodyBytes caps a request body. A token and a CSR fit in a few KiB;
// the cap only bounds what an unauthenticated caller makes kip read.
const MaxBodyBytes = 64 << 10

var requestKind = loginv1alpha1.SchemeGroupVersion.WithKind("TokenCredentialRequest")

// newDecoder decodes JSON strictly: an unknown or duplicated field is an
// error rather than something two parsers might read differently.
func newDecoder() (runtime.Decoder, error) {
	scheme := runtime.NewScheme()
	if err := loginv1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("registering %s: %w", loginv1alpha1.SchemeGroupVersion, err)
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Strict: true}), nil
}

func (h *handler) readRequest(w http.ResponseWriter, r *http.Request) (*loginv1alpha1.TokenCredentialRequest, *apierrors.StatusError) {
	if se := checkContentType(r.Header); se != nil {
		return nil, se
	}
	body, se := readBody(w, r)
	if se != nil {
		return nil, se
	}
	return decode(h.decoder, body)
}

func checkContentType(h http.Header) *apierrors.StatusError {
	if enc := h.Values("Content-Encoding"); len(enc) > 0 && (len(enc) > 1 || enc[0] != "identity") {
		return unsupportedMediaType(fmt.Sprintf("the request body must not be compressed (Content-Encoding %q)", enc))
	}
	types := h.Values("Content-Type")
	if len(types) != 1 {
		return unsupportedMediaType("the request must have one Content-Type: application/json")
	}
	mediaType, _, err := mime.ParseMediaType(types[0])
	if err != nil || mediaType != "application/json" {
		return unsupportedMediaType(fmt.Sprintf("the request body must be application/json, not %q", types[0]))
	}
	return nil
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apierrors.StatusError) {
	tooLarge := apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("the request body is larger than %d bytes; a token credential request needs only a token and a CSR", MaxBodyBytes))
	if r.ContentLength > MaxBodyBytes {
		return nil, tooLarge
	}
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return nil, tooLarge
	case err != nil:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the request body could not be read: %v", err))
	}
	return body, nil
}

// decode accepts a v1alpha1 TokenCredentialRequest and nothing else: the
// scheme also knows other kinds in the group (ListOptions and the like).
func decode(d runtime.Decoder, body []byte) (*loginv1alpha1.TokenCredentialRequest, *apierrors.StatusError) {
	if !json.Valid(body) {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the request body is not valid JSON; send a %s %s", requestKind.GroupVersion(), requestKind.Kind))
	}
	obj, gvk, err := d.Decode(body, nil, nil)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the request body is not a valid %s %s: %s", requestKind.GroupVersion(), requestKind.Kind, decodeProblem(err)))
	}
	req, ok := obj.(*loginv1alpha1.TokenCredentialRequest)
	if !ok || gvk == nil || *gvk != requestKind {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the request body must be a %s %s, not %s", requestKind.GroupVersion(), requestKind.Kind, describeKind(gvk)))
	}
	return req, nil
}

// decodeProblem says what is wrong with a body without quoting it: some
// decoding errors carry the whole input, and with it the token.
func decodeProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	var base64Err base64.CorruptInputError
	switch {
	case runtime.IsMissingVersion(err), runtime.IsMissingKind(err):
		return "apiVersion and kind are required"
	case runtime.IsNotRegisteredError(err):
		return "kip serves no such kind"
	case runtime.IsStrictDecodingError(err):
		// Names fields, never values.
		return err.Error()
	case errors.As(err, &typeErr):
		// Names a field and a type, never a value.
		return err.Error()
	case errors.As(err, &base64Err):
		return "spec.certificateSigningRequest must be base64, as JSON encodes bytes"
	default:
		return "it is not well-formed JSON of the right shape"
	}
}

func describeKind(gvk *schema.GroupVersionKind) string {
	if gvk == nil {
		return "an object of unknown kind"
	}
	return gvk.GroupVersion().String() + " " + gvk.Kind
}

func unsupportedMediaType(message string) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusUnsupportedMediaType,
		Reason:  metav1.StatusReasonUnsupportedMediaType,
		Message: message,
	}}
}
