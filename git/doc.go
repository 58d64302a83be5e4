// Package git serves bare git repositories to stock git clients over alknet
// and gives git a way in: the git-remote-alknet remote helper.
//
// Server (ALPN alknet/git): each QUIC stream carries one request framed as
// git-daemon frames it, a pkt-line "git-upload-pack /name.git\0host=...\0"
// (or git-receive-pack, optionally with "\0version=2\0"), then the pack
// protocol, served by go-git v6 (github.com/go-git/go-git/v6). The same
// backend serves the ssh exec hook through Server.ServeRequest, so clones
// over alknet's ssh see the same repositories and rules. See SPEC.md.
//
// Repositories live under Config.Root; names are clean relative paths
// ending in ".git", resolved inside the root (no "..", no absolute paths, no
// symlink out). Access: the gate scope "git" on the ALPN, then per
// repository the resource "git:repo/<name>" (or a namespace
// "git:repo/team/*") with actions read (fetch, clone), write (push) and
// create (a push to a missing repository creates it). Refusals reach git as
// one "ERR" pkt-line, which git prints as "fatal: remote error: ...".
// Config.Protected refs may not be deleted or rewound by a push.
//
// Client: Helper implements git's remote-helper protocol with the connect
// capability; the alknet binary runs it when invoked as git-remote-alknet,
// so "git clone alknet://<nodeid>@host:port/name.git" works. The server
// also serves TCP+TLS (it is a core.SingleStreamer, one request per TCP
// connection); the helper dials it for alknet+tcp:// URLs, run by git as
// git-remote-alknet+tcp.
//
// Fetches with protocol v2 (the default of the helper and of git over ssh)
// run in this package's session loop: plain clones and fetches are
// answered with the entries of the repository's packs as they are stored,
// with no delta computed again; ls-refs and shallow, filtered or other
// fetches go to go-git's transport.UploadPack, as do protocol v0/v1
// sessions.
//
// Pushes: go-git stores the pack, this package checks and applies the ref
// updates, all or none when the client asks (--atomic), with protected
// refs refused per ref. git passes no protocol version to a connect
// helper; the helper asks for version 2 on fetches unless told otherwise
// (DefaultHelperProtocol).
package git
