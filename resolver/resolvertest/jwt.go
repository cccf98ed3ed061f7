package resolvertest

import "net/http"

// Stubs: JWT issuing and the JWKS endpoints come with local JWT verification.

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }
func (s *Server) jwks(w http.ResponseWriter, r *http.Request)      { http.NotFound(w, r) }

// jwtUser is called with s.mu held.
func (s *Server) jwtUser(token string) (string, bool) { return "", false }
