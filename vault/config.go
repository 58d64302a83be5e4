package vault

import "fmt"

// Argon2id parameter defaults and limits.
const (
	// DefaultArgon2MemoryKiB is the default Argon2id memory cost: 64 MiB.
	DefaultArgon2MemoryKiB = 64 * 1024
	// DefaultArgon2Time is the default number of Argon2id passes.
	DefaultArgon2Time = 3
	// DefaultArgon2Threads is the default Argon2id parallelism.
	DefaultArgon2Threads = 4

	// MaxArgon2MemoryKiB is the largest memory cost accepted, in a config
	// or in a file: 4 GiB.
	MaxArgon2MemoryKiB = 4 * 1024 * 1024
	// MaxArgon2Time is the largest number of passes accepted.
	MaxArgon2Time = 100
)

// Argon2Params are the Argon2id parameters that turn the vault passphrase
// into the key of the vault file. They are stored in the file, so a vault
// opens with the parameters it was made with.
type Argon2Params struct {
	// MemoryKiB is the memory cost in KiB. Zero means
	// DefaultArgon2MemoryKiB (64 MiB). It must be at least 8*Threads and at
	// most MaxArgon2MemoryKiB.
	MemoryKiB uint32
	// Time is the number of passes over the memory. Zero means
	// DefaultArgon2Time (3); at most MaxArgon2Time.
	Time uint32
	// Threads is the degree of parallelism. Zero means
	// DefaultArgon2Threads (4).
	Threads uint8
}

// withDefaults fills zero fields.
func (p Argon2Params) withDefaults() Argon2Params {
	if p.MemoryKiB == 0 {
		p.MemoryKiB = DefaultArgon2MemoryKiB
	}
	if p.Time == 0 {
		p.Time = DefaultArgon2Time
	}
	if p.Threads == 0 {
		p.Threads = DefaultArgon2Threads
	}
	return p
}

// validate checks complete parameters (no zero fields).
func (p Argon2Params) validate() error {
	switch {
	case p.Threads == 0:
		return fmt.Errorf("%w: threads must be at least 1", ErrParams)
	case p.Time == 0 || p.Time > MaxArgon2Time:
		return fmt.Errorf("%w: time %d not in 1..%d", ErrParams, p.Time, MaxArgon2Time)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > MaxArgon2MemoryKiB:
		return fmt.Errorf("%w: memory %d KiB not in %d..%d", ErrParams, p.MemoryKiB, 8*uint32(p.Threads), MaxArgon2MemoryKiB)
	}
	return nil
}

// Config is the configuration of Create.
type Config struct {
	// Argon2 are the Argon2id parameters for the passphrase. Zero fields
	// take the defaults (64 MiB, 3 passes, 4 threads). Tests may use small
	// values; production should keep the defaults or raise them.
	Argon2 Argon2Params
	// BIP39Passphrase is the optional BIP39 passphrase (the "25th word"),
	// stored encrypted next to the mnemonic and used for every derivation.
	// Nil or empty means none. At most 1024 bytes after NFKD.
	BIP39Passphrase []byte
}
