package deviceop

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// deviceEntry is one device authorization, from the device's request
// until its code is spent or expires.
type deviceEntry struct {
	userCode string
	state    op.DeviceAuthorizationState
}

// session is a person who signed in on the verification pages to answer
// one user code.
type session struct {
	userCode, subject string
}

var (
	errUnknownCode  = errors.New("that code is not valid: check it against the one on your device")
	errExpiredCode  = errors.New("that code has expired: start the sign-in on your device again")
	errAnsweredCode = errors.New("that code was already answered")
)

// StoreDeviceAuthorization records a device's request. Expired entries go
// first: user codes are short, and a code must not collide with a live
// one.
func (s *storage) StoreDeviceAuthorization(_ context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	if clientID != s.client.id {
		return errors.New("unknown client")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeExpired()
	if _, ok := s.userCodes[userCode]; ok {
		return op.ErrDuplicateUserCode
	}
	s.devices[deviceCode] = &deviceEntry{userCode: userCode, state: op.DeviceAuthorizationState{
		ClientID: clientID, Scopes: scopes, Expires: expires,
	}}
	s.userCodes[userCode] = deviceCode
	s.grants.DeviceAuthorizations++
	return nil
}

func (s *storage) purgeExpired() {
	now := time.Now()
	for code, e := range s.devices {
		if now.After(e.state.Expires) {
			delete(s.devices, code)
			delete(s.userCodes, e.userCode)
		}
	}
}

// GetDeviceAuthorizatonState answers the device's polls. Once the person
// has answered, the answer is given once and the device code is spent, so
// a second poll with it cannot mint another token.
func (s *storage) GetDeviceAuthorizatonState(ctx context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.devices[deviceCode]
	if !ok || e.state.ClientID != clientID {
		return nil, errors.New("no device authorization with this code for this client")
	}
	state := e.state // the OP appends to the audience of what it is given
	if state.Done || state.Denied {
		delete(s.devices, deviceCode)
		delete(s.userCodes, e.userCode)
	}
	return &state, nil
}

// pending returns the authorization a person is about to answer.
func (s *storage) pending(userCode string) (op.DeviceAuthorizationState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.pendingLocked(userCode)
	if err != nil {
		return op.DeviceAuthorizationState{}, err
	}
	return e.state, nil
}

func (s *storage) pendingLocked(userCode string) (*deviceEntry, error) {
	e, ok := s.devices[s.userCodes[userCode]]
	switch {
	case !ok:
		return nil, errUnknownCode
	case time.Now().After(e.state.Expires):
		return nil, errExpiredCode
	case e.state.Done || e.state.Denied:
		return nil, errAnsweredCode
	}
	return e, nil
}

// signIn checks a person's password and opens a session for answering
// userCode; it returns the session's cookie value.
func (s *storage) signIn(userCode, username, password string) (string, User, error) {
	var user User
	found := false
	for _, u := range s.users {
		if u.Username == username && u.Password == password {
			user, found = u, true
		}
	}
	if !found {
		return "", User{}, errors.New("wrong username or password")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.pendingLocked(userCode); err != nil {
		return "", User{}, err
	}
	id := randomString()
	s.sessions[id] = session{userCode: userCode, subject: user.Subject}
	return id, user, nil
}

// answer ends a session with the person's decision on its code.
func (s *storage) answer(sessionID string, approve bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[sessionID]
	if !ok {
		return errors.New("you are not signed in: open the link from your device again")
	}
	delete(s.sessions, sessionID)
	e, err := s.pendingLocked(sess.userCode)
	if err != nil {
		return err
	}
	if !approve {
		e.state.Denied = true
		s.grants.Denied++
		return nil
	}
	e.state.Done, e.state.Subject = true, sess.subject
	e.state.AuthTime, e.state.AMR = time.Now(), []string{"pwd"}
	s.grants.Approved++
	return nil
}

// normalizeUserCode forgives what people do when they type a code:
// lower case and surrounding spaces.
func normalizeUserCode(code string) string {
	return strings.ToUpper(strings.TrimSpace(code))
}

// Grants counts what the provider did, for tests that must tell a sign-in
// from a refresh from a cache hit.
type Grants struct {
	// DeviceAuthorizations are device requests for a user code.
	DeviceAuthorizations int
	// Approved and Denied are the people's answers.
	Approved, Denied int
	// Refreshes are refresh tokens traded for new tokens.
	Refreshes int
}
