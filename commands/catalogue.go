// Package commands is kojibot's command catalogue and dispatcher: one
// declared Spec per command (name, typed arguments, permission, help,
// examples) drives parsing, validation, the ACL check, help and the audit
// record; handlers call the system packages (Koji DB, fleet, drafts) and
// never check permissions themselves. Nothing here knows IRC.
package commands

import (
	"context"
	"sort"
	"strings"
)

// ArgType is the type an argument is validated against before any handler
// sees it.
type ArgType int

// The argument types.
const (
	HostName ArgType = iota // a Koji or configured host name (letters, digits, . _ -)
	HostGlob                // a host name pattern with * and ?
	Number                  // a finite decimal number
	Word                    // a command name or keyword: letters, digits, - _
	Text                    // free text, the rest of the line (reasons, comments)
	Token                   // a confirmation token
	JobID                   // a job id
	Release                 // a Fedora/EPEL release such as f8, f41, el9, epel10
	NVR                     // a Koji build name-version-release
	Size                    // a memory size such as 4096, 4G, 512M
	Duration                // a duration such as 40m, 2h, 7d
	DraftID                 // an outage draft id
)

// Arg declares one positional argument.
type Arg struct {
	Name     string
	Type     ArgType
	Optional bool
	// Variadic takes every remaining word (joined by spaces for Text).
	Variadic bool
	// Choices, when set, lists the only accepted values.
	Choices []string
}

// Flag declares one --flag. A flag with a Type takes a value; a Bool flag does not.
type Flag struct {
	Name string
	Type ArgType
	Bool bool
	Help string
}

// Tier is who may run a command that acl.commands has no entry for.
type Tier int

// The tiers. The zero value is the safe one.
const (
	// NeedsEntry: nobody, until acl.commands names the command (every
	// command that changes something).
	NeedsEntry Tier = iota
	// AnyIdentified: any identified caller (the read-only commands, and
	// confirm and cancel, whose own action's rule is checked again).
	AnyIdentified
)

// Spec declares one command. Name may hold a subcommand ("connections kill").
// The dispatcher is the only place that checks what a Spec asks: its Tier
// (with acl.commands), and NeedsFleet.
type Spec struct {
	Name  string
	Args  []Arg
	Flags []Flag
	// Tier is who may run it without an acl.commands entry.
	Tier Tier
	// NeedsFleet commands act over SSH: without ssh: and hosts: configured
	// they are refused before their handler runs.
	NeedsFleet bool
	// Destructive commands answer "confirm:" with their plan first.
	Destructive bool
	Summary     string
	Examples    []string
	// Run is the handler: a method of the Dispatcher, so that the table
	// is static.
	Run func(d *Dispatcher, ctx context.Context, c *Call) error
}

// Usage returns the usage line: name, flags and arguments.
func (s *Spec) Usage() string {
	var b strings.Builder
	b.WriteString(s.Name)
	for _, a := range s.Args {
		name := "<" + a.Name + ">"
		if len(a.Choices) > 0 {
			name = strings.Join(a.Choices, "|")
		}
		if a.Variadic {
			name += "..."
		}
		if a.Optional {
			name = "[" + name + "]"
		}
		b.WriteString(" " + name)
	}
	for _, f := range s.Flags {
		if f.Bool {
			b.WriteString(" [--" + f.Name + "]")
		} else {
			b.WriteString(" [--" + f.Name + " <" + typeName(f.Type) + ">]")
		}
	}
	return b.String()
}

// Catalogue is the set of commands, looked up by name.
type Catalogue struct {
	specs map[string]*Spec
	order []string
}

// Commands is the static catalogue of every command, for what needs their
// names or tiers without running them (check-config).
func Commands() *Catalogue { return NewCatalogue(specs()) }

// NewCatalogue builds a catalogue from specs; a duplicate name panics, as it
// is a programming error.
func NewCatalogue(specs []*Spec) *Catalogue {
	c := &Catalogue{specs: make(map[string]*Spec, len(specs))}
	for _, s := range specs {
		if _, dup := c.specs[s.Name]; dup {
			panic("commands: duplicate spec " + s.Name)
		}
		c.specs[s.Name] = s
		c.order = append(c.order, s.Name)
	}
	sort.Strings(c.order)
	return c
}

// Lookup finds the spec for the leading words of a command line: the
// two-word name first ("connections kill"), then the one-word name. It
// returns the spec and how many words its name used.
func (c *Catalogue) Lookup(words []string) (*Spec, int) {
	if len(words) >= 2 {
		if s, ok := c.specs[strings.ToLower(words[0])+" "+strings.ToLower(words[1])]; ok {
			return s, 2
		}
	}
	if len(words) >= 1 {
		if s, ok := c.specs[strings.ToLower(words[0])]; ok {
			return s, 1
		}
	}
	return nil, 0
}

// Names lists every command name, sorted.
func (c *Catalogue) Names() []string { return append([]string(nil), c.order...) }

// Spec returns the spec named name, or nil.
func (c *Catalogue) Spec(name string) *Spec { return c.specs[name] }

// Family returns the specs whose name is name or starts with name + " ".
func (c *Catalogue) Family(name string) []*Spec {
	var out []*Spec
	for _, n := range c.order {
		if n == name || strings.HasPrefix(n, name+" ") {
			out = append(out, c.specs[n])
		}
	}
	return out
}
