package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

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

type fsGetJSON struct {
	fs.FetchResult
	Collection bool   `json:"collection"`
	Files      int    `json:"files,omitempty"`
	Out        string `json:"out"`
}

func newFSGetCmd(g *globals) *cobra.Command {
	var out, tag string
	var keep, quiet, asJSON, collection bool
	var df fsDialFlags
	cmd := &cobra.Command{
		Use:   "get TICKET|HASH [ADDR] -o OUT",
		Short: "Fetch a blob or collection, verified and resumable, and write it to OUT",
		Long: `Fetch the blob or collection a ticket names (or HASH from ADDR; --collection
when HASH names one) into the local store, verifying every 16 KiB chunk
group against the hash before it is written, then write it to OUT: a file,
or for a collection a directory (created when missing) holding its files
with their permission bits. "-o -" writes a file to stdout.

An interrupted get (SIGINT, a lost connection) keeps what it verified; run
the same command again to fetch only the rest. A chunk group that does not
match the hash stops the get with an error naming the hash and offset.

The blob leaves the store when it is written to OUT, unless --keep (or
--tag) keeps it there to serve to others.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pipeProcs() // one stream: less CPU per byte on one P (see pipe)
			ctx := cmd.Context()
			if out == "" {
				return errors.New("-o OUT is required")
			}
			var t fs.Ticket
			if strings.HasPrefix(args[0], fs.TicketPrefix) {
				var err error
				if t, err = fs.ParseTicket(args[0]); err != nil {
					return err
				}
				collection = collection || t.Collection
			} else {
				h, err := fs.ParseHash(args[0])
				if err != nil {
					return fmt.Errorf("%q is neither a ticket (alknet:blob:...) nor a hash: %w", args[0], err)
				}
				t.Hash = h
			}
			addrs := t.NodeAddrs()
			if len(args) == 2 {
				a, err := core.ParseAddr(args[1])
				if err != nil {
					return ipv6Hint(err)
				}
				if !t.Node.IsZero() && a.ID != t.Node {
					return fmt.Errorf("ADDR names node %s, the ticket %s", a.ID, t.Node)
				}
				addrs = []core.Addr{a}
			}
			if collection && out == "-" {
				return errors.New("a collection cannot be written to stdout; give a directory with -o")
			}
			l, err := g.openFSStore(ctx)
			if err != nil {
				return err
			}
			defer l.Close()
			held := l.st.Has(t.Hash)
			if !held && len(addrs) == 0 {
				return errors.New("the blob is not in the local store; give a ticket or ADDR")
			}
			b := &bar{g: g, quiet: quiet || asJSON || out == "-", label: t.Hash.String()[:12]}
			res := fsGetJSON{Collection: collection, Out: out}
			var coll *fs.Collection
			switch {
			case !held || len(addrs) > 0 && collection:
				c, closeFn, err := g.dialFS(ctx, df, addrs)
				if err != nil {
					return err
				}
				defer closeFn()
				if collection {
					coll, res.FetchResult, err = c.FetchCollection(ctx, l.st, t.Hash, fs.CollectionOptions{Tag: tag, Progress: b.update})
				} else {
					res.FetchResult, err = c.Fetch(ctx, l.st, t.Hash, fs.FetchOptions{Tag: tag, Progress: b.update})
				}
				if err != nil {
					b.finish(false)
					if ctx.Err() != nil {
						fmt.Fprintln(g.stderr, "alknet: interrupted; run the same command again to resume")
						return exitCode(130)
					}
					return fsError(err)
				}
				b.finish(true)
			case collection:
				// Held locally, no node to ask: every file must be here.
				if coll, err = l.st.Collection(t.Hash); err != nil {
					return err
				}
				for _, e := range coll.Entries {
					if !l.st.Has(e.Hash) {
						return fmt.Errorf("%s of the collection is not in the local store; give a ticket or ADDR", e.Path)
					}
				}
				res.Hash, res.Cached = t.Hash, true
			default:
				res.Hash, res.Cached = t.Hash, true
			}
			move := !held && !keep && tag == ""
			switch {
			case collection:
				res.Files = len(coll.Entries)
				res.Size = coll.Size()
				if err := l.st.ExportCollection(ctx, coll, out, fs.ExportOptions{}); err != nil {
					return err
				}
			case out == "-":
				f, _, err := l.st.Open(t.Hash)
				if err != nil {
					return err
				}
				_, err = io.Copy(g.stdout, f)
				_ = f.Close()
				if err != nil {
					return err
				}
				return nil
			default:
				if fi, err := os.Stat(out); err == nil && fi.IsDir() {
					return fmt.Errorf("%s is a directory; name the file to write", out)
				}
				if err := l.st.Export(ctx, t.Hash, out, fs.ExportOptions{Move: move}); err != nil {
					return err
				}
			}
			if asJSON {
				return writeJSON(g.stdout, res)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file (or directory, for a collection) to write; - for stdout")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the blob in the local store")
	cmd.Flags().StringVar(&tag, "tag", "", "keep the blob in the local store under this tag")
	cmd.Flags().BoolVar(&collection, "collection", false, "HASH names a collection (a ticket says so itself)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print what was transferred as JSON")
	df.register(cmd)
	return cmd
}

func newFSLsCmd(g *globals) *cobra.Command {
	var asJSON bool
	var df fsDialFlags
	cmd := &cobra.Command{
		Use:   "ls [ADDR]",
		Short: "List tags, blobs and partial downloads (of the node at ADDR: its tags)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if len(args) == 1 {
				addr, err := core.ParseAddr(args[0])
				if err != nil {
					return ipv6Hint(err)
				}
				c, closeFn, err := g.dialFS(ctx, df, []core.Addr{addr})
				if err != nil {
					return err
				}
				defer closeFn()
				tags, err := c.List(ctx)
				if err != nil {
					return fsError(err)
				}
				if asJSON {
					return writeJSON(g.stdout, map[string]any{"tags": nonNilTags(tags)})
				}
				printTags(g.stdout, tags)
				return nil
			}
			l, err := g.openFSStore(ctx)
			if err != nil {
				return err
			}
			defer l.Close()
			tags, err := l.st.Tags(ctx)
			if err != nil {
				return err
			}
			blobs, err := l.st.Blobs(ctx)
			if err != nil {
				return err
			}
			parts, err := l.st.Partials(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				if blobs == nil {
					blobs = []fs.BlobInfo{}
				}
				if parts == nil {
					parts = []fs.PartialInfo{}
				}
				return writeJSON(g.stdout, map[string]any{"tags": nonNilTags(tags), "blobs": blobs, "partial": parts})
			}
			printTags(g.stdout, tags)
			for _, b := range blobs {
				kind := "blob"
				if b.Collection {
					kind = "collection"
				}
				fmt.Fprintf(g.stdout, "%s  %-10s %12d  %s\n", b.Hash, kind, b.Size, strings.Join(b.Tags, ","))
			}
			for _, p := range parts {
				fmt.Fprintf(g.stdout, "%s  %-10s %12d  %d bytes verified\n", p.Hash, "partial", p.Size, p.Present)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	df.register(cmd)
	return cmd
}

func nonNilTags(t []fs.Tag) []fs.Tag {
	if t == nil {
		return []fs.Tag{}
	}
	return t
}

func printTags(w io.Writer, tags []fs.Tag) {
	for _, t := range tags {
		kind := "blob"
		if t.Collection {
			kind = "collection"
		}
		size := fmt.Sprint(t.Size)
		if t.Size < 0 {
			size = "-"
		}
		fmt.Fprintf(w, "tag %s  %s  %-10s %12s\n", t.Name, t.Hash, kind, size)
	}
}

func newFSTagCmd(g *globals) *cobra.Command {
	var del bool
	var df fsDialFlags
	cmd := &cobra.Command{
		Use:   "tag NAME HASH [ADDR] | tag --delete NAME [ADDR]",
		Short: "Name a blob so gc keeps it, or remove a name",
		Args:  cobra.RangeArgs(1, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			name := args[0]
			var hash fs.Hash
			rest := args[1:]
			if !del {
				if len(args) < 2 {
					return errors.New("usage: alknet fs tag NAME HASH [ADDR]")
				}
				h, err := fs.ParseHash(args[1])
				if err != nil {
					return err
				}
				hash, rest = h, args[2:]
			} else if len(rest) > 1 {
				return errors.New("usage: alknet fs tag --delete NAME [ADDR]")
			}
			if err := fs.ValidateTag(name); err != nil {
				return err
			}
			if len(rest) == 1 {
				addr, err := core.ParseAddr(rest[0])
				if err != nil {
					return ipv6Hint(err)
				}
				c, closeFn, err := g.dialFS(ctx, df, []core.Addr{addr})
				if err != nil {
					return err
				}
				defer closeFn()
				if del {
					return fsError(c.Untag(ctx, name))
				}
				return fsError(c.Tag(ctx, name, hash))
			}
			l, err := g.openFSStore(ctx)
			if err != nil {
				return err
			}
			defer l.Close()
			if del {
				return l.st.Untag(ctx, name)
			}
			return l.st.Tag(ctx, name, hash)
		},
	}
	cmd.Flags().BoolVarP(&del, "delete", "d", false, "remove the tag NAME")
	df.register(cmd)
	return cmd
}

func newFSGCCmd(g *globals) *cobra.Command {
	var grace time.Duration
	var partial, dry, asJSON bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove blobs that no tag and no tagged collection keeps",
		Long: `Remove from the local store the blobs that no tag names and no tagged
collection lists, except those added within --grace, and the files of puts
that never finished. --partial also removes interrupted downloads not
touched within --grace (they can no longer be resumed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			l, err := g.openFSStore(ctx)
			if err != nil {
				return err
			}
			defer l.Close()
			if grace == 0 {
				grace = -1
			}
			res, err := l.st.GC(ctx, fs.GCOptions{Grace: grace, Partial: partial, DryRun: dry})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, res)
			}
			verb := "removed"
			if dry {
				verb = "would remove"
			}
			fmt.Fprintf(g.stdout, "%s %d blobs (%d bytes), %d partial downloads, %d stray files\n", verb, res.Blobs, res.Bytes, res.Partials, res.Orphans)
			return nil
		},
	}
	cmd.Flags().DurationVar(&grace, "grace", fs.DefaultGrace, "keep blobs added within this long (0 keeps none)")
	cmd.Flags().BoolVar(&partial, "partial", false, "also remove stale partial downloads")
	cmd.Flags().BoolVar(&dry, "dry-run", false, "say what would be removed, remove nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newFSServeDirCmd(g *globals) *cobra.Command {
	var listen string
	var public, quiet bool
	cmd := &cobra.Command{
		Use:   "serve-dir DIR",
		Short: "Share a directory read-only as a collection until interrupted",
		Long: `Hash every regular file under DIR into a temporary store, print a ticket for
the collection on stdout, and serve it read-only on alknet/fs at --listen
(default: every interface, a free port) with the node's identity until
SIGINT or SIGTERM; then the temporary store is removed. Peers need scope fs
in this node's peer table, unless --public lets anyone with the ticket in.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.serveDir(cmd.Context(), args[0], listen, public, quiet)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "0.0.0.0:0", "UDP address to serve on")
	cmd.Flags().BoolVar(&public, "public", false, "serve anyone who has the ticket, without a peer entry")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

func (g *globals) serveDir(ctx context.Context, dir, listen string, public, quiet bool) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	log := g.logger()
	key, err := g.loadNodeKey(true)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(g.path(configFile), false)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "alknet-serve-dir-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	tdb, err := store.New(store.Config{Path: filepath.Join(tmp, "alknet.db")})
	if err != nil {
		return err
	}
	defer tdb.Close()
	st, err := fs.OpenStore(ctx, fs.StoreConfig{Dir: filepath.Join(tmp, "blobs"), DB: tdb, Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()
	b := &bar{g: g, quiet: quiet, label: filepath.Base(dir)}
	info, coll, err := st.ImportDir(ctx, dir, fs.DirOptions{Tag: "serve-dir", Progress: b.update, Skipped: func(rel string, mode os.FileMode) {
		fmt.Fprintf(g.stderr, "alknet: skipped %s (%s, not a regular file)\n", rel, mode.Type())
	}})
	b.finish(err == nil)
	if err != nil {
		return err
	}

	var peers core.IdentityProvider = core.StaticPeers(nil)
	acl := core.AccessControl{}
	if !public {
		static, err := cfg.peerEntries()
		if err != nil {
			return err
		}
		if err := g.prepareDataDir(); err != nil {
			return err
		}
		db, err := store.New(store.Config{Path: g.path(databaseFile)})
		if err != nil {
			return err
		}
		defer db.Close()
		ps, err := store.NewPeerStore(db, store.PeerStoreConfig{Static: static, Logger: log})
		if err != nil {
			return err
		}
		defer ps.Close()
		peers = newNodePeers(ps, key, cfg.Owner.enabled())
		acl = core.AccessControl{RequiredScopes: []string{fs.ScopeRead}}
	}
	ep, err := core.NewEndpoint(core.Config{ListenAddr: listen, SecretKey: key, Identities: peers, Logger: log})
	if err != nil {
		return listenError(listen, err)
	}
	srv, err := fs.New(fs.Config{Store: st, ReadOnly: true, Public: public, Logger: log})
	if err != nil {
		_ = ep.Close()
		return err
	}
	ep.Register(srv, acl)
	errc := make(chan error, 1)
	go func() { errc <- ep.Serve(context.Background()) }()
	select {
	case <-ep.Ready():
	case err := <-errc:
		return err
	}
	addrs, _ := nodeAddrs(ep.Addr(), listen)
	t := fs.Ticket{Node: key.NodeID(), Hash: info.Hash, Collection: true}
	for _, a := range addrs {
		if len(t.Addrs) < fs.MaxTicketAddrs {
			t.Addrs = append(t.Addrs, a.Host)
		}
	}
	fmt.Fprintln(g.stdout, t.String())
	fmt.Fprintf(g.stderr, "serving %d files (%d bytes) of %s as collection %s; interrupt to stop\n", len(coll.Entries), coll.Size(), dir, info.Hash)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	_ = srv.Close()
	return g.drain(ep, errc, 5*time.Second, log)
}
