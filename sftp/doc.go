// Package sftp serves SFTP v3 over alknet: a core.ProtocolHandler on ALPN
// "alknet/sftp" where every QUIC stream carries one SFTP session as raw
// packets (exactly what OpenSSH's sftp-server reads on stdin, with no SSH
// layer underneath), and ServeSession, which serves one session over any
// byte stream so an SSH server's "sftp" subsystem can use the same backend.
//
// The backend is a directory jail built on os.Root: every path from the
// network is cleaned against the session's root ("/.." stays at "/", as in
// a chroot), then resolved component by component with openat, so "..",
// absolute paths and symlinks (including ones swapped in while an
// operation runs) never reach outside the root. Symlinks are followed
// only while they stay inside; a symlink a client makes may only point
// into its own directory or below (no ".." in the target; an absolute
// target is stored relative to the link), so it cannot lead the host file
// system out of the root either.
// Errors carry SFTP status codes and fixed messages, never host paths or
// OS error text.
//
// Access: the caller gates the session (the alknet binary requires scope
// "sftp" on the ALPN; an SSH server requires its own scope); a peer with
// scope "sftp:write" may also create, write, rename, remove and change
// attributes. Changing owners is refused. Config.PerPeerHome jails each
// peer in <root>/<peer id>.
//
// Requests are handled by github.com/pkg/sftp's request server. A thin
// layer in front of it enforces the packet size limit and the idle
// timeout, and serves the extensions that server lacks: limits@openssh.com,
// fsync@openssh.com and check-file-name/check-file-handle (whole-file or
// per-block hashes, used by alknet cp to verify transfers; see CheckFile).
// posix-rename@openssh.com, statvfs@openssh.com and hardlink@openssh.com
// come from pkg/sftp. SPEC.md describes the wire format and limits.
//
// Client side: Download and Upload copy files and trees the way alknet cp
// does (part file, fsync, SHA-256 verification, rename; resume from a
// verified prefix), and never trust names a node sends: an entry name
// that is not one path element fails the copy. Control is the small
// session they keep open for limits and check-file, so a draining node
// lets running copies finish.
//
// Limits: special files (FIFOs, devices) cannot be opened; Chmod and
// Chtimes follow the os.Root caveat that a file swapped for a symlink
// during the call may have the link itself changed, which stays inside the
// root. fsync reopens the file by the path its handle was opened with.
package sftp
