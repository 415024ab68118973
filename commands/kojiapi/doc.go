// Package kojiapi is kojibot's client of the Koji hub's XML-RPC API: the
// same calls the koji CLI makes (listHosts, editHost, tagBuild...), under
// Koji's own permission checks, history and policy.
//
// It logs in on /kojihub/ssllogin, by Kerberos (SPNEGO, with the keytab
// code kojibot uses for FASJSON) or by a TLS client certificate, and keeps
// the session: the headers Koji-Session-Id, Koji-Session-Key and
// Koji-Session-Callnum, the call number strictly increasing and never sent
// twice. With act_as_caller it keeps one proxied session per caller
// (sslLogin's proxyuser), made when first needed and dropped when idle.
// A lost session (AuthExpired, a session the hub no longer knows) is
// replaced once; only calls that are safe to retry are then sent again:
// reads (Call), and writes whose caller's check says the effect has not
// happened (CallWrite).
//
// The XML-RPC codec is the package xmlrpc below this one (our own, on
// purpose: its doc says why).
package kojiapi
