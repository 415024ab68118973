// Package kojihub is kojibot's client of the Koji hub's XML-RPC API: the
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
// The XML-RPC codec is our own, on purpose. The one Go module for
// XML-RPC is untagged (no release to pin or audit) and mishandles nil: it
// sends a nil as an untyped empty <value/>, which the hub reads as "" (so
// editHost(comment=None) would set an empty comment), and leaves a reused
// target unchanged on <nil/>. Koji needs little of XML-RPC: <nil/> both
// ways, <int>/<i4>/<i8> in and <i8> out beyond int32, <double>,
// <boolean>, <string>, arrays, structs, keyword arguments as a trailing
// struct with __starstar, and faults. That is a few hundred lines,
// strict (a malformed document is an error, never a guess) and fuzzed.
// <dateTime.iso8601> and <base64> are refused both ways: Koji sends times
// as strings or doubles.
package kojihub
