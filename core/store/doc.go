// Package store is a node's SQLite database (<data>/alknet.db) and the
// change notification that lets several processes share it.
//
// A DB opens the file in WAL mode with synchronous=NORMAL, a busy timeout and
// foreign keys on, and creates the schema (peers, credentials,
// notifications, schema_version) if it is missing. Writes run in a
// transaction (DB.Update) that, besides changing its rows, inserts a row into
// notifications with DB.Notify. Every process that subscribes to a channel
// (DB.Subscribe) is woken shortly after such a commit, in this process or
// another one: a watcher polls PRAGMA data_version on a dedicated connection
// about every millisecond and fans out to the subscribers of the channels
// that changed, coalescing bursts into one wake-up. Consumers then read what
// is new and rebuild an in-memory index, swapped atomically, so hot paths
// never touch SQLite. Other modules use the same helper for their own tables.
//
// PeerStore is the first such consumer: it keeps the peer table and serves
// core.IdentityProvider from a core.PeerIndex rebuilt after each change, so
// `alknet peer add` in one process takes effect in a running server within
// milliseconds, and OnReload lets the server re-check live connections
// (core.Endpoint.Reauthorize) so that removing or disabling a peer closes its
// connections.
//
// Security: bearer tokens are shown once and stored only as SHA-256 hashes;
// lookups compare them in constant time. Crash safety comes from SQLite
// transactions: a process killed at any moment leaves the old or the new
// state. The notifications table is pruned to its newest rows on every insert
// so it cannot grow without bound; a subscriber that missed pruned rows is
// woken anyway. The database file holds no secret in clear text, but it does
// hold the peer table: keep the data directory private (0700).
package store
