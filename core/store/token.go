package store

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// TokenPrefix starts every bearer token, so that leaked tokens are easy to
// recognize (secret scanners, logs).
const TokenPrefix = "alk_"

// tokenBytes is the random part of a token: 192 bits.
const tokenBytes = 24

// NewToken returns a fresh bearer token: TokenPrefix followed by 192 random
// bits in unpadded base64url (32 characters). Store only core.HashToken of
// it.
func NewToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("alknet/store: token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// LooksLikeToken reports whether s has the shape of a token made by
// NewToken. It says nothing about whether the token is valid.
func LooksLikeToken(s string) bool {
	rest, ok := strings.CutPrefix(s, TokenPrefix)
	if !ok || len(rest) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil
}
