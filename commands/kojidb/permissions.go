package kojidb

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotAllowed: the Koji user the bot acts as (koji.user) may not edit
// hosts on the hub, so no host change is written. Errors wrapping it are
// *PermissionError values whose Reply is the text shown to the caller.
var ErrNotAllowed = errors.New("koji.user may not edit hosts")

// PermissionError says why koji.user may not edit hosts. It wraps
// ErrNotAllowed, and ErrNoKojiUser when the user does not exist.
type PermissionError struct {
	User   string // koji.user
	Reason string // for the log: "blocked", "a host account", "lacks the admin permission", ...
	noUser bool
}

// Reply is the caller's message, without the "error:" prefix. It names the
// user and the permission needed, never the reason (which is for the log).
func (e *PermissionError) Reply() string {
	return fmt.Sprintf("koji.user %s may not edit hosts (needs the host or admin permission)", e.User)
}

// Error is Reply with the reason.
func (e *PermissionError) Error() string { return e.Reply() + ": " + e.Reason }

// Unwrap returns ErrNotAllowed, and ErrNoKojiUser when the user is missing.
func (e *PermissionError) Unwrap() []error {
	if e.noUser {
		return []error{ErrNotAllowed, ErrNoKojiUser}
	}
	return []error{ErrNotAllowed}
}

// Koji's users.status and users.usertype values that may edit hosts.
const (
	userStatusNormal = 0 // not blocked
	userTypeNormal   = 0 // a person (1 is a build host, 2 a group)
)

// KojiUser is what the hub knows of koji.user, as far as editing hosts goes.
type KojiUser struct {
	ID       int64
	Name     string
	Status   int      // 0 normal, 1 blocked
	UserType int      // 0 normal, 1 host, 2 group
	Perms    []string // the active permissions of the user that allow editing hosts
	// GroupPerms are those the user holds through a group, each as
	// "<permission> (group <name>)"; only on hubs that count them (Koji
	// 1.34 and later), else empty.
	GroupPerms []string
}

// hostPerms are the permissions the hub accepts for editHost and
// set_host_enabled in generation gen. Koji before 1.19 asserts admin; from
// 1.19 on (the 'host' permission came with the 1.18 to 1.19 schema upgrade)
// it asserts host, which admin satisfies (assertPerm always accepts admin).
// The legacy schema is Koji < 1.16: admin only. The 1.16-1.32 schemas
// accept host too: a hub before 1.19 has no 'host' row in permissions, so
// nobody can hold it there.
func hostPerms(gen Generation) []string {
	if gen == Legacy {
		return []string{"admin"}
	}
	return []string{"admin", "host"}
}

// checkKojiUser reads koji.user and returns it when the hub would let it
// edit hosts, else a *PermissionError. Only active user_perms rows count,
// as the hub reads them; with feat.groupPerms (Koji 1.34 and later) also
// the active user_perms of the groups the user is an active member of, as
// the hub's get_user_perms adds them.
func checkKojiUser(ctx context.Context, q querier, gen Generation, feat features, name string) (KojiUser, error) {
	u := KojiUser{Name: name}
	groups := `'{}'::text[]`
	if feat.groupPerms {
		groups = `coalesce(array(SELECT DISTINCT p.name::text || ' (group ' || g.name::text || ')'
				FROM user_groups ug JOIN user_perms up ON up.user_id = ug.group_id
				JOIN permissions p ON p.id = up.perm_id JOIN users g ON g.id = ug.group_id
				WHERE ug.user_id = u.id AND ug.active IS TRUE AND up.active IS TRUE
					AND p.name = ANY($2::text[])
				ORDER BY 1), '{}')`
	}
	err := q.QueryRow(ctx, `SELECT u.id, u.status, u.usertype,
			coalesce(array(SELECT p.name::text FROM user_perms up JOIN permissions p ON p.id = up.perm_id
				WHERE up.user_id = u.id AND up.active IS TRUE AND p.name = ANY($2::text[])
				ORDER BY p.name), '{}'),
			`+groups+`
		FROM users u WHERE u.name = $1`, name, hostPerms(gen)).Scan(&u.ID, &u.Status, &u.UserType, &u.Perms, &u.GroupPerms)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, &PermissionError{User: name, Reason: fmt.Sprintf("no users row named %q (%v)", name, ErrNoKojiUser), noUser: true}
	}
	if err != nil {
		return u, err
	}
	switch {
	case u.Status != userStatusNormal:
		return u, &PermissionError{User: name, Reason: fmt.Sprintf("the user is blocked (users.status %d)", u.Status)}
	case u.UserType != userTypeNormal:
		kind := "not a person"
		switch u.UserType {
		case 1:
			kind = "a build host's account"
		case 2:
			kind = "a group"
		}
		return u, &PermissionError{User: name, Reason: fmt.Sprintf("the user is %s (users.usertype %d)", kind, u.UserType)}
	case len(u.Perms) == 0 && len(u.GroupPerms) == 0:
		how := "(this hub does not count group permissions)"
		if feat.groupPerms {
			how = "directly or through a group"
		}
		return u, &PermissionError{User: name, Reason: fmt.Sprintf("the user has none of the permissions %v %s", hostPerms(gen), how)}
	}
	return u, nil
}

// CheckKojiUser reports whether koji.user may edit hosts on this hub: it
// exists, is not blocked, is a person (not a build host's account) and has
// an active admin permission, or host on Koji 1.19 and later, itself or (on
// Koji 1.34 and later, whose hub counts them) through a group. The answer is
// logged. A refusal is a *PermissionError wrapping ErrNotAllowed; the writes
// check again, inside their transaction, so a later change is seen.
func (d *DB) CheckKojiUser(ctx context.Context) (KojiUser, error) {
	var u KojiUser
	err := d.read(ctx, "check koji.user", func(ctx context.Context, conn *pgxpool.Conn, gen Generation) error {
		var err error
		u, err = checkKojiUser(ctx, conn, gen, d.features(), d.kojiUser)
		return err
	})
	var pe *PermissionError
	switch {
	case errors.As(err, &pe):
		d.log.Error("koji.user may not edit hosts: capacity, enable and disable will be refused",
			"koji_user", d.kojiUser, "reason", pe.Reason)
		return u, pe
	case err != nil:
		return u, err
	}
	d.log.Info("koji.user may edit hosts", "koji_user", d.kojiUser, "user_id", u.ID, "permissions", u.Perms,
		"group_permissions", u.GroupPerms)
	return u, nil
}

// mayEditHosts is the check of CheckKojiUser inside a write transaction; it
// returns koji.user's id.
func (d *DB) mayEditHosts(ctx context.Context, tx pgx.Tx, gen Generation) (int64, error) {
	u, err := checkKojiUser(ctx, tx, gen, d.features(), d.kojiUser)
	var pe *PermissionError
	if errors.As(err, &pe) {
		d.log.Warn("host change refused: koji.user may not edit hosts", "koji_user", d.kojiUser, "reason", pe.Reason)
	}
	return u.ID, err
}
