// Package fs is a content-addressed blob store and the alknet/fs protocol
// that moves its blobs between nodes as verified streams: files named by
// their BLAKE3 hash (equal to b3sum), checked chunk group by chunk group
// as they arrive, with ranges, resume of interrupted downloads,
// collections (a directory as one blob listing its files) and tickets
// (one string naming a node and a hash).
//
// The store (Store) keeps each blob as a file under <data>/blobs named by
// its hash, with a Bao outboard (the BLAKE3 tree's parent nodes, 16 KiB
// chunk groups) beside it, and an index in the node's SQLite database
// (tables fs_*: size, creation time, tags, collection members, partial
// downloads). A write goes to a temporary file, is hashed while it is
// written, synced, and renamed into place only when complete, so a crash
// never leaves a visible partial blob. GC removes the blobs that no tag
// and no tagged collection keeps.
//
// Server is the core.ProtocolHandler for ALPN "alknet/fs"; Client is its
// other side: Fetch (into a Store, verified, resumable), FetchCollection,
// Read (a verified byte range), Put, PutFile, PutDir, Has, Tag, Untag and
// List. SPEC.md is the wire format.
//
// Verification: a client checks every parent node and chunk group against
// the hash before it writes a byte of it, and stops at the first mismatch
// with a *MismatchError naming the hash and the offset. A download keeps
// its verified groups as a partial blob; the next Fetch re-verifies them
// from disk and asks only for the rest. The size of a blob is trusted only
// once its last group has verified.
//
// Security: reading needs scope fs (ScopeRead) on the node, writing and
// tags fs:write (ScopeWrite); knowing a hash is the capability to read
// it. Collections are validated on both sides (no absolute or ".." paths,
// no duplicates, no file that is also a directory, permission bits only),
// and exported through os.Root so a symlink in the destination cannot
// lead a write outside it. Every decoder of network input has a size limit
// and a fuzz test.
//
// Limits: blobs are files on one file system; the store is made for the
// Unix file systems it is tested on (flock and renameat are used there).
// Small blobs of a directory are made durable in batches with one
// syncfs(2) on Linux.
package fs
