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
	"github.com/spf13/cobra"
)

// The fs commands that read: get, ls, tag, gc and serve-dir.

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
				if move {
					// Fetched only to be written out: free the store.
					if _, err := l.st.Drop(ctx, t.Hash); err != nil {
						fmt.Fprintf(g.stderr, "alknet: %v\n", err)
					}
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
