// Package ssh serves SSH-2 over QUIC on the ALPN "alknet/ssh", so that an
// unmodified OpenSSH client (through `alknet pipe` as its ProxyCommand)
// gets shells, commands, ptys, scp and sftp, and port forwarding from an
// alknet node, in-process, without a system sshd.
//
// Every QUIC stream the client opens carries one SSH connection. The host
// key is the node key, so the SSH host key is the node id and the
// known_hosts line follows from the node address. Authentication is public
// key only: the client's ed25519 key maps to the fingerprint
// "ed25519:<hex>", which resolves through the node's core.IdentityProvider
// like every other layer; the identity must hold scope "ssh". What a
// connection may then do is scoped: ssh:shell, ssh:exec, ssh:forward
// (direct-tcpip: ssh -L, ssh -D), ssh:listen (tcpip-forward: ssh -R), and
// each subsystem's own scope (the assembly layer gives sftp ssh:sftp).
// Commands run as the server's own user; the SSH user name grants nothing.
//
// The package also holds the client side the alknet CLI needs: NewClient
// (an SSH client over a stream of an alknet/ssh connection, host key pinned
// to the node id), DialTCP (direct-tcpip with names resolved by the
// server), and a SOCKS5 server (SOCKSServer) that carries each connection
// as a direct-tcpip channel.
//
// Security posture: only a key whose signature verified authorizes a
// connection (the fingerprint travels in the Permissions of the successful
// attempt, never "the last key offered"); authentication attempts are
// capped and every result is logged with remote address and fingerprint;
// forwarding destinations are never logged; the client environment is
// limited to LANG, LC_* and TERM; a forwarding allowlist (Config.ForwardAllow)
// denies by default once set and checks the addresses it actually dials
// (resolved once, unmapped, unspecified addresses as loopback, zoned
// addresses refused; a name glob cannot admit an address an address rule
// denies); a connection authenticated while its peer is revoked is closed
// (resolve, check and track are atomic against Reauthorize);
// remote forwards bind loopback only unless Config.AllowRemoteBind. Limits
// (auth tries, handshake time, idle time, sessions, forwards, listeners)
// have safe defaults.
//
// Limits of this implementation: no agent or X11 forwarding, no
// streamlocal (Unix socket) forwarding, no certificates, no password or
// keyboard-interactive authentication, terminal modes from pty-req are not
// applied (the pty starts with the system defaults).
package ssh
