package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/store"
	"github.com/alkdev/alknet/fs"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// fsConfig is the [fs] section of config.toml.
type fsConfig struct {
	// Disabled turns the alknet/fs service off.
	Disabled bool `toml:"disabled"`
	// Dir is the blob directory; default <data>/blobs.
	Dir string `toml:"dir"`
	// Public serves reads (GET, HAS, LIST) to every caller, anonymous
	// ones included: knowing a hash is the capability. Writing still
	// needs scope fs:write.
	Public bool `toml:"public"`
	// MaxPutSize bounds one uploaded blob in bytes; 0 = default (64 GiB),
	// negative = no limit.
	MaxPutSize int64 `toml:"max_put_size"`
}

func init() {
	addExtension(extension{
		name:     "fs",
		commands: func(g *globals) []*cobra.Command { return []*cobra.Command{newFSCmd(g)} },
		services: fsServices,
	})
}

// fsServices serves the node's blob store on alknet/fs, gated on scope fs
// (or open to anyone with [fs] public = true).
func fsServices(env *serveEnv) ([]*service, error) {
	c := env.cfg.FS
	if c.Disabled {
		return nil, nil
	}
	dir := c.Dir
	if dir == "" {
		dir = env.g.path("blobs")
	}
	st, err := fs.OpenStore(context.Background(), fs.StoreConfig{Dir: dir, DB: env.store, Logger: env.log})
	if err != nil {
		return nil, fmt.Errorf("config [fs]: %w", err)
	}
	srv, err := fs.New(fs.Config{Store: st, Public: c.Public, MaxPutSize: c.MaxPutSize, Logger: env.log})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	env.closers = append(env.closers, st.Close, srv.Close)
	env.ext["fs"] = st
	acl := core.AccessControl{RequiredScopes: []string{fs.ScopeRead}}
	if c.Public {
		acl = core.AccessControl{}
	}
	return []*service{{handler: srv, acl: acl}}, nil
}

func newFSCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fs",
		Short: "Content-addressed blobs: put, get (verified, resumable), share with a ticket",
		Long: `Files named by their BLAKE3 hash (equal to b3sum), kept in <data>/blobs and
served on ALPN alknet/fs. Every 16 KiB chunk group is verified against the
hash as it arrives, before it is written; an interrupted get resumes where it
stopped; a directory travels as a collection (one blob listing path, hash,
size and mode) whose hash names the whole tree.

A ticket (alknet:blob:...) names the node, its addresses and the hash: one
string to paste. Reading a blob needs scope fs on the node (the hash is the
capability); put and tags need fs:write.

  alknet fs put FILE|DIR [ADDR]       add locally, or to the node at ADDR
  alknet fs get TICKET -o OUT         fetch, verify, resume, write OUT
  alknet fs ls [ADDR]                 tags (and, locally, blobs and partials)
  alknet fs tag NAME HASH [ADDR]      name a blob so gc keeps it
  alknet fs gc                        remove untagged blobs
  alknet fs serve-dir DIR             share a directory until interrupted`,
	}
	cmd.AddCommand(newFSPutCmd(g), newFSGetCmd(g), newFSLsCmd(g), newFSTagCmd(g), newFSGCCmd(g), newFSServeDirCmd(g))
	return cmd
}

// fsLocal is the data directory's blob store.
type fsLocal struct {
	db  *store.DB
	st  *fs.Store
	cfg fileConfig
}

func (l *fsLocal) Close() {
	_ = l.st.Close()
	_ = l.db.Close()
}

// openFSStore opens <data>/blobs (or [fs] dir) and the node database.
func (g *globals) openFSStore(ctx context.Context) (*fsLocal, error) {
	cfg, err := loadConfig(g.path(configFile), false)
	if err != nil {
		return nil, err
	}
	if err := g.prepareDataDir(); err != nil {
		return nil, err
	}
	g.checkDatabase()
	db, err := store.New(store.Config{Path: g.path(databaseFile)})
	if err != nil {
		return nil, err
	}
	dir := cfg.FS.Dir
	if dir == "" {
		dir = g.path("blobs")
	}
	st, err := fs.OpenStore(ctx, fs.StoreConfig{Dir: dir, DB: db, Logger: g.logger()})
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &fsLocal{db: db, st: st, cfg: cfg}, nil
}

// fsDialFlags are the flags of commands that may reach a node.
type fsDialFlags struct {
	keyFile string
	tcp     bool
}

func (f *fsDialFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.keyFile, "key", "", "ed25519 private key to present (default: the data directory's identity)")
	cmd.Flags().BoolVar(&f.tcp, "tcp", false, "dial over TCP+TLS instead of QUIC (where UDP is blocked)")
}

// dialFS connects to the first of addrs that answers on alknet/fs.
func (g *globals) dialFS(ctx context.Context, f fsDialFlags, addrs []core.Addr) (*fs.Client, func(), error) {
	if len(addrs) == 0 {
		return nil, nil, errors.New("no address to dial")
	}
	d, err := g.newDialer(f.keyFile)
	if err != nil {
		return nil, nil, err
	}
	d.tcp = f.tcp
	var errs []string
	for _, a := range addrs {
		conn, err := d.dialStreams(ctx, a.String(), fs.ALPN)
		if err != nil {
			if ctx.Err() != nil {
				_ = d.Close()
				return nil, nil, ctx.Err()
			}
			errs = append(errs, describe(err).Error())
			continue
		}
		return fs.NewClient(conn), func() { _ = conn.Close(core.CodeOK, ""); _ = d.Close() }, nil
	}
	_ = d.Close()
	if len(errs) == 1 {
		return nil, nil, errors.New(errs[0])
	}
	return nil, nil, fmt.Errorf("no address answered: %s", strings.Join(errs, "; "))
}

// fsError rewords errors for the command line; a node's refusal says why.
func fsError(err error) error {
	var re *fs.RemoteError
	if errors.As(err, &re) {
		return errors.New(strings.TrimPrefix(re.Message, "alknet/fs: "))
	}
	return describe(err)
}

// bar adapts a progress bar to (done, total) callbacks; nil-safe.
type bar struct {
	g     *globals
	quiet bool
	b     *progressbar.ProgressBar
	total int64
	label string
}

func (b *bar) update(done, total int64) {
	if b.quiet {
		return
	}
	if b.b == nil || total != b.total {
		if total < 0 {
			return
		}
		if b.b != nil {
			_ = b.b.Exit()
		}
		b.b = b.g.progressBar(total, b.quiet)
		b.total = total
		if b.b == nil {
			b.quiet = true
			return
		}
		if b.label != "" {
			b.b.Describe(b.label)
		}
	}
	_ = b.b.Set64(done)
}

func (b *bar) finish(ok bool) {
	if b.b == nil {
		return
	}
	if ok {
		_ = b.b.Finish()
		return
	}
	_ = b.b.Exit()
	fmt.Fprintln(b.g.stderr)
}

// localTicket makes a ticket for this node's addresses: the listen
// address of config.toml (every interface address when it is 0.0.0.0).
func (g *globals) localTicket(cfg fileConfig, hash fs.Hash, collection bool) (fs.Ticket, error) {
	key, err := g.loadNodeKey(false)
	if err != nil {
		return fs.Ticket{}, err
	}
	listen := cfg.Listen
	if listen == "" {
		listen = "0.0.0.0:4433"
	}
	addrs, _ := nodeAddrs(core.Addr{ID: key.NodeID(), Host: listen}, listen)
	t := fs.Ticket{Node: key.NodeID(), Hash: hash, Collection: collection}
	for _, a := range addrs {
		if len(t.Addrs) < fs.MaxTicketAddrs {
			t.Addrs = append(t.Addrs, a.Host)
		}
	}
	return t, nil
}

type fsPutJSON struct {
	Hash       fs.Hash `json:"hash"`
	Size       int64   `json:"size"`
	Collection bool    `json:"collection"`
	Files      int     `json:"files,omitempty"`
	Tag        string  `json:"tag,omitempty"`
	Ticket     string  `json:"ticket,omitempty"`
}

func newFSPutCmd(g *globals) *cobra.Command {
	var tag string
	var noTag, quiet, asJSON bool
	var df fsDialFlags
	cmd := &cobra.Command{
		Use:   "put FILE|DIR [ADDR]",
		Short: "Add a file or directory to the local store, or to the node at ADDR",
		Long: `Add FILE, or every regular file under DIR as a collection, to the store of
the data directory, or with ADDR to that node's store (needs scope fs:write
there). Prints the hash, then a ticket for it, on stdout (--json: one
object). The blob is tagged with the file's name (--tag to choose, --no-tag
for none), so gc keeps it. Symlinks and special files in DIR are skipped
with a notice.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pipeProcs() // one stream: less CPU per byte on one P (see pipe)
			ctx := cmd.Context()
			src := args[0]
			fi, err := os.Stat(src)
			if err != nil {
				return err
			}
			if !noTag && tag == "" {
				tag = fsTagName(src)
			}
			if noTag {
				tag = ""
			}
			if tag != "" {
				if err := fs.ValidateTag(tag); err != nil {
					return fmt.Errorf("%w (choose one with --tag)", err)
				}
			}
			b := &bar{g: g, quiet: quiet || asJSON, label: filepath.Base(src)}
			skipped := func(rel string, mode os.FileMode) {
				fmt.Fprintf(g.stderr, "alknet: skipped %s (%s, not a regular file)\n", rel, mode.Type())
			}
			out := fsPutJSON{Tag: tag, Collection: fi.IsDir()}
			var ticket fs.Ticket
			if len(args) == 2 {
				addr, err := core.ParseAddr(args[1])
				if err != nil {
					return ipv6Hint(err)
				}
				c, closeFn, err := g.dialFS(ctx, df, []core.Addr{addr})
				if err != nil {
					return err
				}
				defer closeFn()
				if fi.IsDir() {
					h, coll, err := c.PutDir(ctx, src, fs.DirOptions{Tag: tag, Skipped: skipped, Progress: b.update})
					if err != nil {
						b.finish(false)
						return fsError(err)
					}
					out.Hash, out.Size, out.Files = h, coll.Size(), len(coll.Entries)
				} else {
					out.Size = fi.Size()
					out.Hash, err = c.PutFile(ctx, src, fs.PutOptions{Tag: tag, Progress: func(n int64) { b.update(n, fi.Size()) }})
					if err != nil {
						b.finish(false)
						return fsError(err)
					}
				}
				ticket = fs.Ticket{Node: addr.ID, Addrs: []string{addr.Host}, Hash: out.Hash, Collection: fi.IsDir()}
			} else {
				l, err := g.openFSStore(ctx)
				if err != nil {
					return err
				}
				defer l.Close()
				if fi.IsDir() {
					info, coll, err := l.st.ImportDir(ctx, src, fs.DirOptions{Tag: tag, Skipped: skipped, Progress: b.update})
					if err != nil {
						b.finish(false)
						return err
					}
					out.Hash, out.Size, out.Files = info.Hash, coll.Size(), len(coll.Entries)
				} else {
					info, err := l.st.ImportFile(ctx, src, fs.PutOptions{Tag: tag, Progress: func(n int64) { b.update(n, fi.Size()) }})
					if err != nil {
						b.finish(false)
						return err
					}
					out.Hash, out.Size = info.Hash, info.Size
				}
				if ticket, err = g.localTicket(l.cfg, out.Hash, fi.IsDir()); err != nil {
					fmt.Fprintf(g.stderr, "alknet: no ticket: %v\n", err)
				}
			}
			b.finish(true)
			if !ticket.Node.IsZero() {
				out.Ticket = ticket.String()
			}
			if asJSON {
				return writeJSON(g.stdout, out)
			}
			fmt.Fprintln(g.stdout, out.Hash)
			if out.Ticket != "" {
				fmt.Fprintln(g.stdout, out.Ticket)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&tag, "tag", "", "tag to give the blob (default: the file or directory name)")
	cmd.Flags().BoolVar(&noTag, "no-tag", false, "add without a tag (gc removes it after its grace period)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	df.register(cmd)
	return cmd
}

// fsTagName turns a path into a default tag: its base name with
// characters a tag cannot hold replaced by "_".
func fsTagName(p string) string {
	base := filepath.Base(filepath.Clean(p))
	b := []byte(base)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-:@+", c) >= 0
		if !ok {
			b[i] = '_'
		}
	}
	s := strings.TrimLeft(string(b), "-")
	if len(s) > fs.MaxTagLength {
		s = s[:fs.MaxTagLength]
	}
	return s
}
