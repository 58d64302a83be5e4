// Package pkarr signs, publishes and resolves alknet node records in
// pkarr's format on the BitTorrent Mainline DHT, so that a node can be
// found by its ed25519 key alone.
//
// A record is a BEP44 mutable item whose key is the node key (no salt):
// seq is the signing time in microseconds, v a DNS packet (at most
// MaxPacketSize bytes) holding A/AAAA records of the node's addresses and
// an SVCB record with its port and ALPNs, all named by the node id in
// z-base-32. The signature covers the BEP44 string
// "3:seqi<seq>e1:v<len>:<v>". SignedPacket's binary form is pkarr's
// (key, signature, seq, packet).
//
// DHT is a Mainline DHT node (github.com/anacrolix/dht/v2) that stores
// and serves items for others, publishes records (Publish) and looks them
// up (Resolve). Its bootstrap list replaces the public routers, for
// private networks and tests. Publisher keeps a node's record current:
// it republishes when the addresses change and every hour. Cache keeps
// the highest sequence number seen per key and refuses older records.
//
// Security: every record is verified (size, key, signature) before it is
// used, whatever its source; among valid records the highest seq wins, so
// neither a forged record nor a replayed older one can redirect a lookup.
// A record only says where a key claims to be: the caller still pins the
// key when it dials, so a wrong address fails the TLS handshake and never
// reaches another node. The DHT itself is open: anyone can read a
// record, and the addresses in it are public. A DHT node stores items for
// others in memory, at most DHTConfig.MaxItems of them; lookups are
// bounded in queries and contacts.
package pkarr
