package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/store"
	"github.com/alkdev/alknet/msg"
	"github.com/alkdev/alknet/vault"
	"github.com/spf13/cobra"
)

// msgConfig is the [msg] section of config.toml.
type msgConfig struct {
	// Disabled turns the alknet/msg service and the outbox loop off.
	Disabled bool `toml:"disabled"`
	// RequireSend makes delivery require scope msg:send; by default anyone
	// (anonymous callers included) may deliver within the rate limits.
	RequireSend bool `toml:"require_send"`
	// Host lists peer ids whose mailboxes this node keeps (they need
	// msg:fetch to read them).
	Host []string `toml:"host"`
	// MaxEnvelope caps a delivered envelope, in bytes; 0 = the 256 KiB
	// bucket.
	MaxEnvelope int64 `toml:"max_envelope"`
	// Rate limits of delivery: per second and burst, per caller key and
	// per source address (IPv6: /64). 0 = the module's default, negative =
	// no limit.
	RatePerKey   float64 `toml:"rate_per_key"`
	BurstPerKey  int     `toml:"burst_per_key"`
	RatePerAddr  float64 `toml:"rate_per_addr"`
	BurstPerAddr int     `toml:"burst_per_addr"`
	// Mailbox quota; 0 = 10000 messages, 256 MiB.
	MaxMessages int64 `toml:"max_messages"`
	MaxBytes    int64 `toml:"max_bytes"`
	// RetryMin and RetryMax bound the outbox's exponential backoff; 0 =
	// 1s and 10m.
	RetryMin time.Duration `toml:"retry_min"`
	RetryMax time.Duration `toml:"retry_max"`
}

// msgState is what the msg extension keeps between its hooks
// (env.ext["msg"]).
type msgState struct {
	srv *msg.Server
	key *msg.PrivateKey
}

// msgVaultIKM holds, per invocation, the vault's message-path key read
// while loadNodeKey had the vault unlocked.
var msgVaultIKM sync.Map // *globals -> []byte

func init() {
	vaultUnlockHooks = append(vaultUnlockHooks, func(g *globals, v *vault.Vault) error {
		k, err := v.DeriveKey(vault.MessageKeyPath())
		if err != nil {
			return fmt.Errorf("message key: %w", err)
		}
		defer k.Wipe()
		msgVaultIKM.Store(g, k.Seed())
		return nil
	})
	addExtension(extension{
		name:     "msg",
		commands: func(g *globals) []*cobra.Command { return []*cobra.Command{newMsgCmd(g)} },
		services: msgServices,
		started:  msgStarted,
	})
}

// msgKey derives the node's message key: from the vault's message path
// (m/74'/3'/0'/0') when the data directory has a vault, else from the node
// key. loadNodeKey must have run first.
func (g *globals) msgKey(node core.SecretKey) (*msg.PrivateKey, error) {
	if v, ok := msgVaultIKM.Load(g); ok {
		return msg.NewPrivateKey(node, v.([]byte))
	}
	if _, err := os.Stat(g.path(vaultFile)); err == nil {
		return nil, errors.New("message key: the vault was not unlocked")
	}
	return msg.KeyFromNodeKey(node)
}

func msgServices(env *serveEnv) ([]*service, error) {
	c := env.cfg.Msg
	if c.Disabled {
		return nil, nil
	}
	key, err := env.g.msgKey(env.key)
	if err != nil {
		return nil, err
	}
	srv, err := msg.NewServer(context.Background(), msg.Config{
		DB: env.store, Key: key, Identities: env.peers, Host: c.Host,
		RequireSendScope: c.RequireSend, MaxEnvelope: c.MaxEnvelope,
		RatePerKey: c.RatePerKey, BurstPerKey: c.BurstPerKey, RatePerAddr: c.RatePerAddr, BurstPerAddr: c.BurstPerAddr,
		MaxMailboxMessages: c.MaxMessages, MaxMailboxBytes: c.MaxBytes,
		Logger: env.log,
	})
	if err != nil {
		return nil, fmt.Errorf("config [msg]: %w", err)
	}
	env.ext["msg"] = &msgState{srv: srv, key: key}
	rec := key.Record()
	call.Query(env.calls, "msg/key", func(context.Context, struct{}) (msgKeyInfo, error) {
		return msgKeyInfoOf(rec), nil
	}, call.Options{Description: "This node's message public key (X-Wing, " + fmt.Sprint(msg.PublicKeySize) +
		" bytes) and the key record that binds it to the node id, signed by the node key."})
	// The ALPN is open: anyone may deliver (the server applies its rate
	// limits and, with require_send, msg:send); reading needs msg:fetch.
	return []*service{{handler: srv, acl: core.AccessControl{}}}, nil
}

func msgStarted(ctx context.Context, env *serveEnv) error {
	st, ok := env.ext["msg"].(*msgState)
	if !ok {
		return nil
	}
	ob, err := msg.NewOutbox(msg.OutboxConfig{
		Store: st.srv.Store(), Key: st.key,
		Dial:       func(ctx context.Context, a core.Addr) (core.Conn, error) { return env.ep.Dial(ctx, a, msg.ALPN) },
		MinBackoff: env.cfg.Msg.RetryMin, MaxBackoff: env.cfg.Msg.RetryMax,
		Logger: env.log,
	})
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := ob.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			env.log.Warn("msg outbox stopped", "err", err)
		}
	}()
	// Closers run in reverse order: this one waits for the loop before the
	// database (opened earlier) is closed.
	env.closers = append(env.closers, func() error { <-done; return nil })
	return nil
}

// msgKeyInfo is the answer of the call operation msg/key and of
// `alknet msg key --json`.
type msgKeyInfo struct {
	Node      string `json:"node"`
	PublicKey string `json:"public_key"` // base64, 1216 bytes
	Record    string `json:"record"`     // base64 of node id || public key || signature
}

func msgKeyInfoOf(r msg.KeyRecord) msgKeyInfo {
	return msgKeyInfo{
		Node:      r.Node.String(),
		PublicKey: base64.StdEncoding.EncodeToString(r.Key),
		Record:    base64.StdEncoding.EncodeToString(r.Marshal()),
	}
}

func newMsgCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "msg",
		Short: "End-to-end encrypted messages between nodes",
		Long: `Messages are sealed for the recipient's message key (X-Wing HPKE, a
post-quantum hybrid) and signed by the sender inside the encryption: only
the recipient can read them or learn who sent them. alknet serve keeps this
node's mailbox (alknet/msg), and delivers what msg send queued, retrying
with backoff until the recipient's node acknowledges it.`,
	}
	cmd.AddCommand(newMsgSendCmd(g), newMsgInboxCmd(g), newMsgReadCmd(g), newMsgWatchCmd(g), newMsgKeyCmd(g), newMsgOutboxCmd(g), newMsgFetchCmd(g))
	return cmd
}

// msgSend is one `alknet msg send`: the message and where it goes. It is
// handed to sendViaMix before the direct path runs.
type msgSend struct {
	g      *globals
	cmd    *cobra.Command
	key    core.SecretKey
	msgKey *msg.PrivateKey
	store  *msg.Store
	// to is the recipient; via the node whose mailbox takes the message
	// (to itself, or its host). via.Host is empty when only a node id was
	// given and no address of it is known.
	to  core.NodeID
	via core.Addr
	// message is filled in but not sealed; Seal sets its id and time.
	message *msg.Message
}

// recipientKey returns the recipient's verified key record: cached, or
// fetched from via (and cached).
func (s *msgSend) recipientKey(ctx context.Context, ep *core.Endpoint) (msg.KeyRecord, error) {
	rec, _, err := s.store.CachedKey(ctx, s.to)
	if err == nil || !errors.Is(err, msg.ErrNotFound) {
		return rec, err
	}
	if s.via.Host == "" {
		return msg.KeyRecord{}, fmt.Errorf("no key and no address of %s; give NODEID@HOST:PORT", s.to)
	}
	conn, err := ep.Dial(ctx, s.via, msg.ALPN)
	if err != nil {
		return msg.KeyRecord{}, describe(err)
	}
	defer conn.Close(core.CodeOK, "")
	q := s.to
	if q == s.via.ID {
		q = core.NodeID{}
	}
	if rec, err = msg.NewClient(conn).Key(ctx, q); err != nil {
		return msg.KeyRecord{}, err
	}
	addr := ""
	if s.via.ID == s.to {
		addr = s.via.String()
	}
	return rec, s.store.CacheKey(ctx, rec, addr)
}

// msgSendFlags, when set by another file of this package, adds flags to
// `alknet msg send` (such as --via-mix).
var msgSendFlags func(cmd *cobra.Command)

// sendViaMix, when set by another file of this package, is asked first by
// `alknet msg send`. It returns handled=false to leave the message to the
// direct path (its flag is not set), or delivers s.message itself and
// returns handled=true with the message id; msg send then prints the id.
// It must not print on stdout.
var sendViaMix func(ctx context.Context, s *msgSend) (id msg.MessageID, handled bool, err error)

func newMsgSendCmd(g *globals) *cobra.Command {
	var file, to, ctype string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "send ADDR|NODEID [TEXT|-]",
		Short: "Send an encrypted message; prints its id",
		Long: `Seal a message for a node and queue it in this node's outbox, then try to
deliver it at once. The body is TEXT, the contents of --file, or standard
input ("-" or no TEXT). ADDR is <nodeid>@<host>:<port> of the recipient, or of
the node that hosts its mailbox (then --to names the recipient); a bare
NODEID is found from the address this node last reached it at, else from
its signed record ([dht] known nodes, then the DHT; see alknet resolve).

Prints the message id. When the recipient cannot be reached now the message
stays queued (stderr says so) and alknet serve delivers it, retrying with
exponential backoff until the recipient's node acknowledges it; see
alknet msg outbox.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			body, ct, err := g.msgBody(args[1:], file, ctype)
			if err != nil {
				return err
			}
			r, err := g.openMsg(ctx, true)
			if err != nil {
				return err
			}
			defer r.close()
			key, mk, st := r.node, r.key, r.store
			s := &msgSend{g: g, cmd: cmd, key: key, msgKey: mk, store: st,
				message: &msg.Message{ContentType: ct, Body: body}}
			if s.to, s.via, err = resolveMsgTarget(ctx, st, args[0], to); err != nil {
				return err
			}
			if sendViaMix != nil {
				id, handled, err := sendViaMix(ctx, s)
				if err != nil {
					return err
				}
				if handled {
					fmt.Fprintln(g.stdout, id)
					return nil
				}
			}
			return g.msgSendDirect(ctx, s, timeout)
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "send the contents of this file (at most 256 KiB)")
	cmd.Flags().StringVar(&to, "to", "", "recipient node id when ADDR is the node hosting its mailbox")
	cmd.Flags().StringVar(&ctype, "type", "", "content type (default text/plain; charset=utf-8, or from --file's extension)")
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Second, "how long the immediate delivery attempt may take")
	if msgSendFlags != nil {
		msgSendFlags(cmd)
	}
	return cmd
}

// msgSendDirect queues the message and makes one delivery attempt now.
func (g *globals) msgSendDirect(ctx context.Context, s *msgSend, timeout time.Duration) error {
	dialTimeout := g.connectTimeout
	if dialTimeout <= 0 {
		dialTimeout = defaultDialTimeout
	}
	ep, err := core.NewEndpoint(core.Config{SecretKey: s.key, HandshakeTimeout: dialTimeout})
	if err != nil {
		return err
	}
	defer ep.Close()
	if s.via.Host == "" {
		// A bare node id nobody told us the address of: its signed record
		// (known nodes, then the DHT) names it, pinned to the same id.
		r, err := g.resolveNode(ctx, s.via.ID, false, nil)
		if err != nil || len(r.Addrs) == 0 {
			return fmt.Errorf("no known address of %s; give NODEID@HOST:PORT: %w", s.via.ID, err)
		}
		s.via = r.Addrs[0]
	}
	ob, err := msg.NewOutbox(msg.OutboxConfig{
		Store: s.store, Key: s.msgKey, AttemptTimeout: timeout,
		Dial: func(ctx context.Context, a core.Addr) (core.Conn, error) { return ep.Dial(ctx, a, msg.ALPN) },
	})
	if err != nil {
		return err
	}
	id, err := ob.Send(ctx, s.to, s.via, s.message)
	if err != nil {
		return err
	}
	fmt.Fprintln(g.stdout, id)
	err = ob.Attempt(ctx, id)
	switch {
	case err == nil:
		fmt.Fprintf(g.stderr, "delivered to %s\n", s.via)
		return nil
	case errors.Is(err, msg.ErrLeased), errors.Is(err, msg.ErrNotFound) && !isRemote(err):
		fmt.Fprintln(g.stderr, "queued; the running node delivers it")
		return nil
	}
	entries, lerr := s.store.Outbox(ctx)
	if lerr == nil {
		for _, e := range entries {
			if e.ID == id && e.State == "failed" {
				return fmt.Errorf("refused by %s: %w", s.via, describe(err))
			}
		}
	}
	fmt.Fprintf(g.stderr, "queued, not delivered yet: %v\nalknet serve retries until %s acknowledges it (alknet msg outbox)\n", describe(err), s.via.ID)
	return nil
}

// isRemote reports whether err is a mailbox node's answer.
func isRemote(err error) bool {
	var re *msg.RemoteError
	return errors.As(err, &re)
}

// resolveMsgTarget turns ADDR|NODEID (and --to) into recipient and
// mailbox node.
func resolveMsgTarget(ctx context.Context, st *msg.Store, arg, to string) (core.NodeID, core.Addr, error) {
	var via core.Addr
	if strings.Contains(arg, "@") {
		a, err := core.ParseAddr(arg)
		if err != nil {
			return core.NodeID{}, via, ipv6Hint(err)
		}
		via = a
	} else {
		id, err := core.ParseNodeID(arg)
		if err != nil {
			return core.NodeID{}, via, fmt.Errorf("%q is neither NODEID@HOST:PORT nor a node id", arg)
		}
		via.ID = id
		if _, addr, err := st.CachedKey(ctx, id); err == nil && addr != "" {
			if a, err := core.ParseAddr(addr); err == nil {
				via = a
			}
		}
	}
	rcpt := via.ID
	if to != "" {
		id, err := core.ParseNodeID(to)
		if err != nil {
			return core.NodeID{}, via, fmt.Errorf("--to: %w", err)
		}
		rcpt = id
	}
	return rcpt, via, nil
}

// msgBody reads the body from TEXT, --file or stdin, and picks its content
// type.
func (g *globals) msgBody(args []string, file, ctype string) ([]byte, string, error) {
	const text = "text/plain; charset=utf-8"
	var body []byte
	def := text
	switch {
	case file != "" && len(args) > 0:
		return nil, "", errors.New("give either TEXT or --file, not both")
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return nil, "", err
		}
		defer f.Close()
		if body, err = readBounded(f, file); err != nil {
			return nil, "", err
		}
		def = "application/octet-stream"
		if t := mime.TypeByExtension(filepath.Ext(file)); t != "" {
			def = t
		}
	case len(args) == 1 && args[0] != "-":
		body = []byte(args[0])
	default:
		var err error
		if body, err = readBounded(g.stdin, "standard input"); err != nil {
			return nil, "", err
		}
	}
	if ctype == "" {
		ctype = def
	}
	if _, err := msg.BucketFor(len(ctype), len(body)); err != nil {
		return nil, "", err
	}
	return body, ctype, nil
}

// readBounded reads at most msg.MaxBody bytes, refusing more.
func readBounded(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, msg.MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > msg.MaxBody {
		return nil, fmt.Errorf("%s: more than %d bytes; a message body holds at most that", name, msg.MaxBody)
	}
	return b, nil
}

// openMsgStore opens the node database and its msg tables.
func (g *globals) openMsgStore(ctx context.Context) (*msg.Store, func(), error) {
	if err := g.prepareDataDir(); err != nil {
		return nil, nil, err
	}
	db, err := store.New(store.Config{Path: g.path(databaseFile)})
	if err != nil {
		return nil, nil, err
	}
	st, err := msg.OpenStore(ctx, db)
	if err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	return st, func() { _ = db.Close() }, nil
}

// msgInboxEntry is one message of `msg inbox --json`, `msg read --json`
// and `msg watch --json`.
type msgInboxEntry struct {
	ID          string    `json:"id"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	Time        time.Time `json:"time"`
	Received    time.Time `json:"received"`
	ContentType string    `json:"content_type"`
	Size        int       `json:"size"`
	FirstLine   string    `json:"first_line,omitempty"`
}

func inboxEntry(m *msg.Message, it msg.Item) msgInboxEntry {
	return msgInboxEntry{
		ID: m.ID.String(), From: m.Sender.String(), To: m.Recipient.String(),
		Time: m.Time.UTC(), Received: time.UnixMilli(it.Received).UTC(),
		ContentType: m.ContentType, Size: len(m.Body), FirstLine: firstLine(m),
	}
}

// firstLine is the start of a text body, safe for a terminal.
func firstLine(m *msg.Message) string {
	if !strings.HasPrefix(m.ContentType, "text/") && m.ContentType != "" {
		return ""
	}
	line, _, _ := bytes.Cut(m.Body, []byte("\n"))
	if len(line) > 200 {
		line = line[:200]
	}
	var b strings.Builder
	for _, r := range string(line) {
		switch {
		case r == utf8.RuneError, r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
			b.WriteRune('?')
		default:
			b.WriteRune(r)
		}
	}
	s := b.String()
	if utf8.RuneCountInString(s) > 60 {
		s = string([]rune(s)[:59]) + "…"
	}
	return s
}

// msgReader opens the node's mailbox for the local commands.
type msgReader struct {
	node  core.SecretKey
	key   *msg.PrivateKey
	store *msg.Store
	close func()
}

func (g *globals) openMsgReader(ctx context.Context) (*msgReader, error) {
	return g.openMsg(ctx, false)
}

// openMsg loads what the msg commands share: the node key (created when
// create is set), its message key and the node's message store.
func (g *globals) openMsg(ctx context.Context, create bool) (*msgReader, error) {
	key, err := g.loadNodeKey(create)
	if err != nil {
		return nil, err
	}
	mk, err := g.msgKey(key)
	if err != nil {
		return nil, err
	}
	st, closeDB, err := g.openMsgStore(ctx)
	if err != nil {
		return nil, err
	}
	return &msgReader{node: key, key: mk, store: st, close: closeDB}, nil
}

// items returns the mailbox's messages after cursor, opened; envelopes
// that do not open (none should: the node checked them on delivery) are
// reported on stderr and skipped.
func (r *msgReader) items(ctx context.Context, g *globals, after int64) ([]msgInboxEntry, int64, error) {
	var out []msgInboxEntry
	for {
		items, err := r.store.Fetch(ctx, r.key.NodeID(), after, 1000, 64<<20)
		if err != nil {
			return nil, after, err
		}
		if len(items) == 0 {
			return out, after, nil
		}
		for _, it := range items {
			after = it.Seq
			m, err := msg.Open(r.key, it.Envelope)
			if err != nil {
				fmt.Fprintf(g.stderr, "mailbox entry %d: %v\n", it.Seq, err)
				continue
			}
			out = append(out, inboxEntry(m, it))
		}
	}
}

func printInbox(w io.Writer, es []msgInboxEntry, header bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "ID\tFROM\tTIME\tSIZE\tFIRST LINE")
	}
	for _, e := range es {
		from := e.From
		if len(from) > 12 {
			from = from[:12] + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", e.ID, from, e.Time.Local().Format("2006-01-02 15:04:05"), e.Size, e.FirstLine)
	}
	_ = tw.Flush()
}

func newMsgInboxCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inbox",
		Short: "List the messages in this node's mailbox",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.openMsgReader(cmd.Context())
			if err != nil {
				return err
			}
			defer r.close()
			es, _, err := r.items(cmd.Context(), g, 0)
			if err != nil {
				return err
			}
			if asJSON {
				if es == nil {
					es = []msgInboxEntry{}
				}
				return writeJSON(g.stdout, es)
			}
			if len(es) == 0 {
				fmt.Fprintln(g.stderr, "no messages")
				return nil
			}
			printInbox(g.stdout, es, true)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func newMsgReadCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "read ID",
		Short: "Print a message's body (or --json its metadata)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := msg.ParseMessageID(args[0])
			if err != nil {
				return err
			}
			r, err := g.openMsgReader(cmd.Context())
			if err != nil {
				return err
			}
			defer r.close()
			it, err := r.store.Get(cmd.Context(), r.key.NodeID(), id)
			if err != nil {
				return err
			}
			m, err := msg.Open(r.key, it.Envelope)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, inboxEntry(m, it))
			}
			_, err = g.stdout.Write(m.Body)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the metadata as JSON instead of the body")
	return cmd
}

func newMsgWatchCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Show messages as they arrive, until interrupted",
		Long: `Print one line per message as it arrives in this node's mailbox (written by
alknet serve, in another process), within milliseconds, until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			r, err := g.openMsgReader(ctx)
			if err != nil {
				return err
			}
			defer r.close()
			sub, err := r.store.Subscribe()
			if err != nil {
				return err
			}
			defer sub.Close()
			// Start after what is there now.
			_, cursor, err := r.itemsCursor(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stderr, "watching for messages; interrupt to stop")
			for {
				es, next, err := r.items(ctx, g, cursor)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				cursor = next
				for _, e := range es {
					if asJSON {
						if err := writeJSONLine(g.stdout, e); err != nil {
							return err
						}
					} else {
						printInbox(g.stdout, []msgInboxEntry{e}, false)
					}
				}
				select {
				case <-ctx.Done():
					return nil
				case _, ok := <-sub.C:
					if !ok {
						return nil
					}
				}
			}
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	return cmd
}

// itemsCursor returns the sequence number of the newest stored item.
func (r *msgReader) itemsCursor(ctx context.Context) (int, int64, error) {
	var cursor int64
	n := 0
	for {
		items, err := r.store.Fetch(ctx, r.key.NodeID(), cursor, 1000, 64<<20)
		if err != nil {
			return 0, 0, err
		}
		if len(items) == 0 {
			return n, cursor, nil
		}
		n += len(items)
		cursor = items[len(items)-1].Seq
	}
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func newMsgKeyCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Print this node's message public key (base64)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := g.loadNodeKey(false)
			if err != nil {
				return err
			}
			mk, err := g.msgKey(key)
			if err != nil {
				return err
			}
			info := msgKeyInfoOf(mk.Record())
			if asJSON {
				return writeJSON(g.stdout, info)
			}
			fmt.Fprintln(g.stdout, info.PublicKey)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the node id, the key and the signed key record as JSON")
	return cmd
}

func newMsgOutboxCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "outbox",
		Short: "List queued messages and their next retry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, closeDB, err := g.openMsgStore(cmd.Context())
			if err != nil {
				return err
			}
			defer closeDB()
			es, err := st.Outbox(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if es == nil {
					es = []msg.OutboxEntry{}
				}
				return writeJSON(g.stdout, es)
			}
			if len(es) == 0 {
				fmt.Fprintln(g.stderr, "outbox empty")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTO\tSTATE\tATTEMPTS\tNEXT TRY\tLAST ERROR")
			for _, e := range es {
				next := e.NextTry.Local().Format("2006-01-02 15:04:05")
				if e.State == "failed" {
					next = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", e.ID, e.Addr, e.State, e.Attempts, next, firstLine(&msg.Message{ContentType: "text/plain", Body: []byte(e.LastError)}))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func newMsgFetchCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fetch ADDR",
		Short: "Move this node's messages from the node that hosts its mailbox",
		Long: `For a node whose mailbox another node keeps ([msg] host = ["<this peer>"]
there, with scope msg:fetch for this node's key): publish this node's key
record to the host so that senders can seal for it, move every message the
host holds into the local mailbox (each one checked as on delivery) and
acknowledge them there, so the host deletes them. Prints the ids of the new
messages; see alknet msg inbox.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			host, err := core.ParseAddr(args[0])
			if err != nil {
				return ipv6Hint(err)
			}
			r, err := g.openMsg(ctx, false)
			if err != nil {
				return err
			}
			defer r.close()
			key, mk, st := r.node, r.key, r.store
			local, err := msg.NewServer(ctx, msg.Config{DB: st.DB(), Key: mk})
			if err != nil {
				return err
			}
			timeout := g.connectTimeout
			if timeout <= 0 {
				timeout = defaultDialTimeout
			}
			ep, err := core.NewEndpoint(core.Config{SecretKey: key, HandshakeTimeout: timeout})
			if err != nil {
				return err
			}
			defer ep.Close()
			conn, err := ep.Dial(ctx, host, msg.ALPN)
			if err != nil {
				return describe(err)
			}
			defer conn.Close(core.CodeOK, "")
			c := msg.NewClient(conn)
			if err := c.Publish(ctx, mk.Record()); err != nil {
				return err
			}
			self := key.NodeID()
			moved := 0
			for {
				items, err := c.Fetch(ctx, self, 0, 256)
				if err != nil {
					return err
				}
				if len(items) == 0 {
					break
				}
				seqs := make([]int64, 0, len(items))
				for _, it := range items {
					res, err := local.DeliverLocal(ctx, it.Envelope)
					var re *msg.RemoteError
					switch {
					case err == nil && !res.Duplicate:
						m, oerr := msg.Open(mk, it.Envelope)
						if oerr == nil {
							fmt.Fprintln(g.stdout, m.ID)
						}
						moved++
					case err == nil:
					case errors.As(err, &re) && !re.Code.Temporary():
						fmt.Fprintf(g.stderr, "dropped an envelope the host held: %v\n", err)
					default:
						return err // keep it on the host; try again later
					}
					seqs = append(seqs, it.Seq)
				}
				if _, err := c.Ack(ctx, self, seqs...); err != nil {
					return err
				}
			}
			fmt.Fprintf(g.stderr, "%d new messages from %s\n", moved, host)
			return nil
		},
	}
	return cmd
}
