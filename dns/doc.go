// Package dns makes an alknet node a DNS server: authoritative for zones
// kept in the node database, optionally forwarding other names, over DNS
// over QUIC (RFC 9250, ALPN "doq") and over classic UDP and TCP (RFC 1035,
// RFC 7766). Messages are github.com/miekg/dns values; the DoQ mapping,
// the zone index and the store are this package's.
//
// # Serving
//
// A Server answers every transport with one Handler. It is a
// core.ProtocolHandler for "doq" (register it with an open AccessControl:
// stock resolvers connect without a client certificate, under core's
// anonymous caps) and ListenClassic binds UDP and TCP on one port.
// NewResolver is the Handler of a node: authoritative answers from a
// ZoneSource (a Store, or a fixed *Zones from NewZones), other names sent to
// an Exchanger (a Forwarder) when the client asks for recursion, REFUSED
// otherwise.
//
//	st, _ := dns.NewStore(ctx, db, dns.StoreConfig{Follow: true})
//	srv, _ := dns.NewServer(dns.Config{Handler: dns.NewResolver(st, nil)})
//	ep.Register(srv, core.AccessControl{})      // DoQ on the node's UDP port
//	l, _ := srv.ListenClassic("127.0.0.1:5353") // classic DNS
//	go l.Serve(ctx)
//
// Lookups follow RFC 1034 section 4.3.2 (CNAMEs inside local zones,
// referrals with glue at zone cuts) and RFC 4592 (wildcards, empty
// non-terminals). NXDOMAIN and NODATA carry the zone's SOA in the authority
// section with the negative TTL of RFC 2308. Zone transfers are refused.
//
// # Zones in the node database
//
// Store keeps zones in the tables dns_zones and dns_records of alknet.db
// (core/store). Every write is one transaction that also records a
// notification on Channel, so a server whose Store follows the database
// (StoreConfig.Follow) rebuilds its in-memory index within milliseconds of
// a change made by any process, and swaps it atomically: queries never
// touch SQLite. Each change advances the zone's SOA serial.
//
// Programs that compute records serve them through the same store:
// PutRRset replaces one RRset (name and type) and PutName replaces every
// record at a name, atomically; the name must lie in a zone (AddZone). This
// is how a node serves its own signed address record under
// <nodeid>.<zone>:
//
//	err := st.PutName(ctx, id.String()+".nodes.example.", []mdns.RR{a, aaaa, svcb})
//
// Import and Export read and write RFC 1035 master files (miekg/dns's zone
// parser, without $INCLUDE).
//
// # DNS over QUIC
//
// One query per client-opened stream: a 2-byte length, the message with
// Message ID 0, then FIN; one answer back the same way. A non-zero ID, a FIN
// inside the message, bytes after it, a length over Config.MaxQuerySize, an
// edns-tcp-keepalive option, or no FIN within Config.QueryTimeout close the
// connection with DOQ_PROTOCOL_ERROR and a reason. At most Config.MaxStreams
// queries of a connection are in progress at once; the server accepts no
// further stream of it until one finishes, so QUIC flow control holds the
// client back (the unbounded stream handling of CVE-2025-47950 cannot
// happen). Answers to queries with EDNS(0) are padded to a multiple of 468
// bytes (RFC 8467). Client and Exchange are the client side, for any DoQ
// server and for a pinned alknet peer. SPEC.md has the wire details.
//
// # Forwarding
//
// Forwarder sends names outside the local zones to upstreams
// ("udp://", "tcp://", "doq://"), in order, and caches answers for the
// smallest TTL among their records (for negative answers the SOA's), capped
// by ForwardConfig.MaxCacheTTL.
//
// # Limits and security
//
// Every decoder of network input has a limit: DoQ and TCP queries
// (MaxQuerySize, checked on the length prefix before reading), streams per
// DoQ connection, queries in progress per server (MaxInflight: UDP over it
// is dropped), TCP connections (MaxTCPConns) and their idle time and query
// count, master files (MaxImportSize, MaxImportRecords). Names are kept to
// host-name characters so that what is stored prints and parses back the
// same. UDP answers are truncated (TC) to 512 bytes, or to the client's
// EDNS(0) size up to Config.UDPSize, and clients retry over TCP. The server
// logs protocol errors with the remote address, never query names.
package dns
