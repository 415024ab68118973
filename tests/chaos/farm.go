package chaos

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for the state store's tables
	"golang.org/x/crypto/ssh/knownhosts"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", for a SQLite state store read beside the bot

	"github.com/fedora-infra/kojibot/commands/state"
	"github.com/fedora-infra/kojibot/tests/harness"
	"github.com/fedora-infra/kojibot/tests/harness/faultproxy"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// Nick is the bot's nick: every replica has the same configuration.
const Nick = "kojibot"

// callers are the IRC accounts that send the commands, all in the
// sandbox's ops group.
var callers = []string{"op1", "op2", "op3"}

// farm is the sandbox, the fault proxies in front of the builders, the
// state store and the replicas.
type farm struct {
	sb *sandbox.Sandbox
	// proxies are the fault proxies by builder name: the bot reaches
	// every builder through its proxy.
	proxies map[string]*faultproxy.Proxy
	// store is "postgres" or "sqlite"; stateDSN or stateDir.
	store    string
	stateDSN string
	stateDir string
	// stateFS is the small tmpfs that holds stateDir (SQLite run).
	stateFS  string
	replicas *Replicas
	binary   string
	config   string
	// matrix is the homeserver with the ops room, when the run has
	// Matrix (nil otherwise).
	matrix *sandbox.Matrix
}

// startFarm starts the sandbox farm, a proxy per builder, the bot's own
// state store and the replicas.
func startFarm(ctx context.Context, o Options, dir string) (*farm, error) {
	users := map[string]string{}
	for _, c := range callers {
		users[c] = c + "-pw"
	}
	sb, err := sandbox.Start(ctx, sandbox.Options{Dir: filepath.Join(dir, "sandbox"), Users: users, Members: callers,
		Farm: true, FastBots: true})
	if err != nil {
		return nil, err
	}
	f := &farm{sb: sb, proxies: map[string]*faultproxy.Proxy{}, store: o.Store, binary: o.Binary}
	if o.Matrix {
		// The callers' accounts and the watcher's on the homeserver too;
		// the watcher creates the room.
		musers := map[string]string{matrixWatcher: matrixPassword(matrixWatcher)}
		for _, c := range callers {
			musers[c] = matrixPassword(c)
		}
		if f.matrix, err = sb.StartMatrix(ctx, musers); err != nil {
			f.close()
			return nil, fmt.Errorf("matrix: %w", err)
		}
	}
	if err := f.setup(ctx, o, dir); err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

func (f *farm) setup(ctx context.Context, o Options, dir string) error {
	// The proxies, and a known_hosts that names each builder's key at
	// its proxy's address.
	hosts := map[string]any{}
	kh, err := os.ReadFile(f.sb.Farm.KnownHosts())
	if err != nil {
		return err
	}
	lines := []string{strings.TrimRight(string(kh), "\n")}
	for _, b := range sandbox.Builders {
		p, err := faultproxy.Start("127.0.0.1:0", f.sb.Farm.Address(b))
		if err != nil {
			return err
		}
		f.proxies[b] = p
		lines = append(lines, knownhosts.Line([]string{p.Addr()}, f.sb.Farm.HostKey(b)))
		entry := map[string]any{"address": p.Addr()}
		if svcs := f.sb.Farm.Hosts()[b].Services; len(svcs) > 0 {
			entry["services"] = svcs
		}
		hosts[b] = entry
	}
	knownHosts := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	stateSection := map[string]any{}
	switch f.store {
	case StorePostgres:
		if f.stateDSN, err = f.stateDB(ctx); err != nil {
			return err
		}
		stateSection["dsn"] = f.stateDSN
		stateSection["dir"] = filepath.Join(dir, "state-unused")
	case StoreSQLite:
		f.stateFS = filepath.Join(dir, "statefs")
		if err := os.MkdirAll(f.stateFS, 0o700); err != nil {
			return err
		}
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "kojibot-chaos-state", f.stateFS).CombinedOutput(); err != nil {
			return fmt.Errorf("mount the state tmpfs: %v: %s", err, out)
		}
		f.stateDir = filepath.Join(f.stateFS, "state")
		stateSection["dir"] = f.stateDir
	default:
		return fmt.Errorf("chaos: unknown store %q (postgres or sqlite)", f.store)
	}
	ports := make([]int, o.Replicas)
	for i := range ports {
		if ports[i], err = harness.FreePort(); err != nil {
			return err
		}
	}
	// One configuration for every replica, as operators deploy them; the
	// HTTP port is the one thing that differs (replicas on one machine).
	extra := map[string]any{
		"hosts": hosts,
		"ssh":   map[string]any{"known_hosts": knownHosts, "connect_timeout": "3s", "command_timeout": "30s"},
		"state": stateSection,
		// The run claims what a dead exec left open on each sweep.
		"watch": map[string]any{"interval": "3s"},
		"http":  map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", ports[0])},
	}
	if f.matrix != nil {
		extra["matrix"] = f.matrix.Section
	}
	f.config, err = f.sb.WriteConfig(ctx, sandbox.BotConfig{Nick: Nick, DB: sandbox.KojiDB, Extra: extra})
	if err != nil {
		return err
	}
	f.replicas = newReplicas(f.sb, f.binary, f.config, ports)
	return f.replicas.start(ctx)
}

// stateDB creates the bot's own database in the sandbox's PostgreSQL (a
// cluster apart from the Koji hub's), owned by a role of its own.
func (f *farm) stateDB(ctx context.Context) (string, error) {
	conn, err := pgx.Connect(ctx, f.sb.PG.AdminDSN("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	const name, role, password = "kojibot_chaos", "kojibot_chaos_bot", "pw-chaos"
	for _, q := range []string{
		fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, role, password),
		fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, name, role),
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return "", err
		}
	}
	admin := f.sb.PG.AdminDSN(name)
	dsn := strings.Replace(admin, "postgres@", role+":"+password+"@", 1)
	if dsn == admin {
		return "", fmt.Errorf("chaos: cannot make the store's DSN from %s", admin)
	}
	return dsn, nil
}

// openState opens the bot's store for reading beside the bot: the
// PostgreSQL database, or the SQLite file read-only.
func (f *farm) openState() (*sql.DB, bool, error) {
	if f.store == StorePostgres {
		db, err := sql.Open("pgx", f.sb.PG.AdminDSN("kojibot_chaos"))
		return db, true, err
	}
	path := filepath.Join(f.stateDir, state.FileName)
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	return db, false, err
}

// stateQuery runs a one-value query on the store, with a short timeout.
func (f *farm) stateQuery(ctx context.Context, q string, dest any) error {
	db, _, err := f.openState()
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return db.QueryRowContext(ctx, q).Scan(dest)
}

// close stops everything.
func (f *farm) close() {
	if f.replicas != nil {
		f.replicas.stop()
	}
	for _, p := range f.proxies {
		p.Close()
	}
	f.sb.Close()
	if f.stateFS != "" {
		_ = exec.Command("umount", "-l", f.stateFS).Run()
	}
}
