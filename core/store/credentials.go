package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// CredentialsChannel is the notification channel of the credentials table;
// the payload is the provider.
const CredentialsChannel = "credentials"

// Credential is one encrypted secret kept for a provider (a DNS API key, a
// password). The store never sees clear text: the caller encrypts Data with
// a key of version KeyVersion derived with Salt, using IV as the nonce.
type Credential struct {
	Provider   string // primary key, e.g. "dns/cloudflare"
	KeyVersion int    // which key encrypted Data, for rotation
	Salt       []byte
	IV         []byte
	Data       []byte // ciphertext
}

// PutCredential creates or replaces the credential of c.Provider.
func (db *DB) PutCredential(ctx context.Context, c Credential) error {
	if c.Provider == "" || len(c.Provider) > 128 {
		return errors.New("alknet/store: credential provider must be 1 to 128 bytes")
	}
	return db.Update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO credentials (provider, key_version, salt, iv, data) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (provider) DO UPDATE SET key_version = excluded.key_version,
				salt = excluded.salt, iv = excluded.iv, data = excluded.data`,
			c.Provider, c.KeyVersion, nonNil(c.Salt), nonNil(c.IV), nonNil(c.Data))
		if err != nil {
			return fmt.Errorf("put credential %q: %w", c.Provider, err)
		}
		return db.Notify(ctx, tx, CredentialsChannel, c.Provider)
	})
}

// GetCredential returns the credential of provider, or ErrCredentialNotFound.
func (db *DB) GetCredential(ctx context.Context, provider string) (Credential, error) {
	c := Credential{Provider: provider}
	err := db.Read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT key_version, salt, iv, data FROM credentials WHERE provider = ?`, provider).
			Scan(&c.KeyVersion, &c.Salt, &c.IV, &c.Data)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return Credential{}, fmt.Errorf("%w: %q", ErrCredentialNotFound, provider)
	}
	if err != nil {
		return Credential{}, err
	}
	return c, nil
}

// DeleteCredential removes the credential of provider, or returns
// ErrCredentialNotFound.
func (db *DB) DeleteCredential(ctx context.Context, provider string) error {
	return db.Update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM credentials WHERE provider = ?`, provider)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("%w: %q", ErrCredentialNotFound, provider)
		}
		return db.Notify(ctx, tx, CredentialsChannel, provider)
	})
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
