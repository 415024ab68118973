package acl

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// reasonError is an error whose text is fit for the caller and that
// matches one of the package's sentinels.
type reasonError struct {
	kind error
	msg  string
}

func (e *reasonError) Error() string { return e.msg }
func (e *reasonError) Unwrap() error { return e.kind }

// unknownGroupError says a group in the policy does not exist.
type unknownGroupError struct {
	group string
	where string
}

func (e *unknownGroupError) Error() string {
	return fmt.Sprintf("group %s %s", e.group, e.where)
}
func (e *unknownGroupError) Unwrap() error { return ErrUnknownGroup }

// mapping is the answer of the ircnicks search for one services account.
type mapping struct {
	user    string   // the one FAS user found, or ""
	matches []string // set when several users claim the nick
}

// searchUser is the part of FASJSON's user model the search needs.
type searchUser struct {
	Username string `json:"username"`
	// IRCNicks is nil when FASJSON leaves it out (private profiles).
	IRCNicks *[]string `json:"ircnicks"`
}

// resolve maps caller to a FAS user: the trusted caller.FASUser, else
// acl.accounts, else the ircnicks search (fasjson), else, with the static
// source only, the account itself when acl.account_is_fas_user, unless
// acl.accounts gives that FAS user to another account.
func (c *Checker) resolve(ctx context.Context, caller Caller) (string, error) {
	if caller.FASUser != "" {
		if !ValidName(caller.FASUser) {
			return "", &reasonError{ErrNoFASUser, fmt.Sprintf("%q is not a valid FAS username", caller.FASUser)}
		}
		return caller.FASUser, nil
	}
	if caller.Matrix {
		return c.resolveMatrix(ctx, caller.Account)
	}
	acct := caller.Account
	if u, ok := c.accountUser(acct); ok {
		return u, nil
	}
	if c.source == SourceFASJSON {
		m, err := c.lookupIRCNick(ctx, acct)
		if err != nil {
			return "", err
		}
		switch {
		case len(m.matches) > 1:
			return "", &reasonError{ErrNoFASUser, fmt.Sprintf(
				"services account %q is an IRC nick of several FAS users (%s); ask an admin to map it in acl.accounts",
				acct, strings.Join(m.matches, ", "))}
		case m.user != "":
			return m.user, nil
		}
	}
	if c.accountIsFASUser && c.source == SourceStatic {
		switch {
		case !ValidName(acct):
			return "", &reasonError{ErrNoFASUser, fmt.Sprintf(
				"services account %q is not a valid FAS username; ask an admin to map it in acl.accounts", acct)}
		case c.mappedTo[strings.ToLower(acct)]:
			return "", &reasonError{ErrNoFASUser, fmt.Sprintf(
				"FAS user %s is linked to another services account in acl.accounts, not to %q", acct, acct)}
		}
		return acct, nil
	}
	hint := "ask an admin to map it in acl.accounts"
	if c.source == SourceFASJSON {
		values := c.nickValues(acct)
		hint = fmt.Sprintf("add %s to the IRC nicks of your FAS profile, or %s", values[len(values)-1], hint)
	}
	return "", &reasonError{ErrNoFASUser, fmt.Sprintf(
		"services account %q is not linked to a FAS user; %s", acct, hint)}
}

// knownUser is the caller's FAS user when it is known without asking
// FASJSON (for the audit of @identified commands); "" otherwise.
func (c *Checker) knownUser(caller Caller) string {
	if caller.FASUser != "" {
		return caller.FASUser
	}
	if caller.Matrix {
		return c.knownMatrixUser(caller.Account)
	}
	key := c.caseMapping().Fold(caller.Account)
	if u, ok := c.accountUser(caller.Account); ok {
		return u
	}
	if c.source == SourceFASJSON {
		c.mu.Lock()
		m, ok := c.mappings.get(key, c.now())
		c.mu.Unlock()
		if !ok || len(m.matches) > 1 {
			return ""
		}
		if m.user != "" {
			return m.user
		}
	}
	if c.accountIsFASUser && c.source == SourceStatic && ValidName(caller.Account) &&
		!c.mappedTo[strings.ToLower(caller.Account)] {
		return caller.Account
	}
	return ""
}

// nickValues are the forms FAS stores an IRC nick on this network in:
// "irc:/nick" and, when acl.network is set, "irc://<network>/nick".
func (c *Checker) nickValues(account string) []string {
	v := []string{"irc:/" + account}
	if c.network != "" {
		v = append(v, "irc://"+c.network+"/"+account)
	}
	return v
}

// lookupIRCNick asks FASJSON which users list account as an IRC nick on this
// network, trying every stored form. Answers are cached, errors are not.
func (c *Checker) lookupIRCNick(ctx context.Context, account string) (mapping, error) {
	return c.lookupNick(ctx, c.caseMapping().Fold(account), account, c.nickValues(account))
}

// lookupNick asks FASJSON which users list one of values in their ircnicks;
// the answer is cached under key.
func (c *Checker) lookupNick(ctx context.Context, key, account string, values []string) (mapping, error) {
	cm := c.caseMapping()
	if c.ttl > 0 {
		c.mu.Lock()
		m, ok := c.mappings.get(key, c.now())
		c.mu.Unlock()
		if ok {
			return m, nil
		}
	}
	seen := map[string]bool{}
	var found []string
	for _, value := range values {
		var users []searchUser
		err := c.get(ctx, "/v1/search/users/", url.Values{"ircnick__exact": {value}}, &users)
		var nf *notFoundError
		if errors.As(err, &nf) {
			err = unavailable("the user search answered 404 (is acl.fasjson_url right?)")
		}
		if err != nil {
			return mapping{}, err
		}
		for _, u := range users {
			if !ValidName(u.Username) {
				c.log.Warn("acl: FASJSON search returned an invalid username", "username", u.Username)
				continue
			}
			// Trust but verify: when the profile shows its nicks, one of
			// them must be exactly the value searched for.
			if u.IRCNicks != nil && !slices.ContainsFunc(*u.IRCNicks, func(n string) bool {
				return cm.Fold(n) == cm.Fold(value)
			}) {
				continue
			}
			if k := strings.ToLower(u.Username); !seen[k] {
				seen[k] = true
				found = append(found, u.Username)
			}
		}
	}
	var m mapping
	switch len(found) {
	case 0:
	case 1:
		m.user = found[0]
	default:
		slices.Sort(found)
		m.matches = found
	}
	c.log.Debug("acl: ircnicks search", "account", account, "user", m.user, "matches", m.matches)
	if c.ttl > 0 {
		now := c.now()
		c.mu.Lock()
		c.mappings.put(key, m, now.Add(c.ttl), now)
		c.mu.Unlock()
	}
	return m, nil
}

// member reports whether FAS user user is in group: acl.groups for the
// static source, else FASJSON's is-member, cached. Errors are not cached.
func (c *Checker) member(ctx context.Context, user, group string) (bool, error) {
	if c.source == SourceStatic {
		set, ok := c.groups[strings.ToLower(group)]
		if !ok {
			return false, &unknownGroupError{group: group, where: c.missingWhere()}
		}
		return set[strings.ToLower(user)], nil
	}
	if !ValidName(user) {
		return false, &reasonError{ErrNoFASUser, fmt.Sprintf("%q is not a valid FAS username", user)}
	}
	if !ValidName(group) {
		return false, &unknownGroupError{group: group, where: "is not a valid FAS group name"}
	}
	key := strings.ToLower(user) + "\x00" + strings.ToLower(group)
	if c.ttl > 0 {
		c.mu.Lock()
		v, ok := c.members.get(key, c.now())
		c.mu.Unlock()
		if ok {
			return v, nil
		}
	}
	var isMember bool
	err := c.get(ctx, "/v1/groups/"+url.PathEscape(group)+"/is-member/"+url.PathEscape(user), nil, &isMember)
	var nf *notFoundError
	if errors.As(err, &nf) {
		return false, &unknownGroupError{group: group, where: c.missingWhere()}
	}
	if err != nil {
		return false, err
	}
	c.log.Debug("acl: FASJSON membership", "user", user, "group", group, "member", isMember)
	if c.ttl > 0 {
		now := c.now()
		c.mu.Lock()
		c.members.put(key, isMember, now.Add(c.ttl), now)
		c.mu.Unlock()
	}
	return isMember, nil
}
