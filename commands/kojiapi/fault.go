package kojiapi

import (
	"errors"
	"strings"

	"github.com/fedora-infra/kojibot/commands/kojiapi/xmlrpc"
)

// Fault is an XML-RPC fault the hub answered with: Koji's exception class
// as Code (see the Fault* constants) and its text as String.
type Fault = xmlrpc.Fault

// Kwargs are the keyword arguments of a call (editHost's capacity=...,
// sslLogin's proxyuser=...). Given as the last argument of Call, they are
// sent as a trailing struct with the member __starstar set to true, the
// way Koji's own client sends them.
type Kwargs = xmlrpc.Kwargs

// The fault codes of Koji's exceptions (koji/__init__.py).
const (
	FaultGeneric            = 1000 // GenericError
	FaultLock               = 1001 // LockError
	FaultAuth               = 1002 // AuthError
	FaultTag                = 1003 // TagError
	FaultActionNotAllowed   = 1004 // ActionNotAllowed
	FaultBuild              = 1005 // BuildError
	FaultAuthLock           = 1006 // AuthLockError
	FaultAuthExpired        = 1007 // AuthExpired
	FaultSequence           = 1008 // SequenceError
	FaultRetry              = 1009 // RetryError
	FaultPreBuild           = 1010 // PreBuildError
	FaultPostBuild          = 1011 // PostBuildError
	FaultBuildroot          = 1012 // BuildrootError
	FaultFunctionDeprecated = 1013 // FunctionDeprecated
	FaultServerOffline      = 1014 // ServerOffline
	FaultLiveCD             = 1015 // LiveCDError
	FaultPlugin             = 1016 // PluginError
	FaultCallback           = 1017 // CallbackError
	FaultAppliance          = 1018 // ApplianceError
	FaultParameter          = 1019 // ParameterError
	FaultImport             = 1020 // ImportError
	FaultConfiguration      = 1021 // ConfigurationError
	FaultLiveMedia          = 1022 // LiveMediaError
	FaultGSSAPIAuth         = 1023 // GSSAPIAuthError
	FaultNameValidation     = 1024 // NameValidationError
)

// invalidSession is the message of the AuthError the hub answers for a
// session it does not know (closed, or never made).
const invalidSession = "Invalid session or bad credentials"

// faultNames are the names of Koji's exceptions by fault code.
var faultNames = map[int]string{
	FaultGeneric: "GenericError", FaultLock: "LockError", FaultAuth: "AuthError",
	FaultTag: "TagError", FaultActionNotAllowed: "ActionNotAllowed", FaultBuild: "BuildError",
	FaultAuthLock: "AuthLockError", FaultAuthExpired: "AuthExpired", FaultSequence: "SequenceError",
	FaultRetry: "RetryError", FaultPreBuild: "PreBuildError", FaultPostBuild: "PostBuildError",
	FaultBuildroot: "BuildrootError", FaultFunctionDeprecated: "FunctionDeprecated",
	FaultServerOffline: "ServerOffline", FaultLiveCD: "LiveCDError", FaultPlugin: "PluginError",
	FaultCallback: "CallbackError", FaultAppliance: "ApplianceError", FaultParameter: "ParameterError",
	FaultImport: "ImportError", FaultConfiguration: "ConfigurationError", FaultLiveMedia: "LiveMediaError",
	FaultGSSAPIAuth: "GSSAPIAuthError", FaultNameValidation: "NameValidationError",
}

// FaultName is the name of Koji's exception for the code of the Fault in
// err's chain, e.g. "ActionNotAllowed", or "" for none or a code Koji does
// not define.
func FaultName(err error) string { return faultNames[FaultCode(err)] }

// FaultCode returns the code of the Fault in err's chain, or 0.
func FaultCode(err error) int {
	var f *Fault
	if errors.As(err, &f) {
		return f.Code
	}
	return 0
}

// IsFault reports whether err holds a Fault of Koji's exception name
// ("ActionNotAllowed", "AuthError"...) or of one of its subclasses as
// Koji defines them (AuthExpired is an AuthError).
func IsFault(err error, name string) bool {
	code := FaultCode(err)
	if code == 0 {
		return false
	}
	for c := code; c != 0; c = faultParent[c] {
		if faultNames[c] == name {
			return true
		}
	}
	return false
}

// faultParent is Koji's exception hierarchy below GenericError.
var faultParent = map[int]int{
	FaultLock: FaultGeneric, FaultAuth: FaultGeneric, FaultTag: FaultGeneric,
	FaultActionNotAllowed: FaultGeneric, FaultBuild: FaultGeneric,
	FaultAuthLock: FaultAuth, FaultAuthExpired: FaultAuth, FaultSequence: FaultAuth,
	FaultRetry: FaultAuth, FaultGSSAPIAuth: FaultAuth,
	FaultPreBuild: FaultBuild, FaultPostBuild: FaultBuild, FaultBuildroot: FaultBuild,
	FaultFunctionDeprecated: FaultGeneric, FaultServerOffline: FaultGeneric,
	FaultLiveCD: FaultGeneric, FaultPlugin: FaultGeneric, FaultCallback: FaultPlugin,
	FaultAppliance: FaultGeneric, FaultParameter: FaultGeneric, FaultImport: FaultGeneric,
	FaultConfiguration: FaultGeneric, FaultLiveMedia: FaultGeneric,
	FaultNameValidation: FaultGeneric,
}

// sessionLost reports whether err says the hub no longer honours the
// session: it expired (AuthExpired) or the hub does not know it (the
// AuthError "Invalid session or bad credentials").
func sessionLost(err error) bool {
	var f *Fault
	if !errors.As(err, &f) {
		return false
	}
	switch f.Code {
	case FaultAuthExpired:
		return true
	case FaultAuth:
		return strings.Contains(f.Message(), invalidSession)
	}
	return false
}

// OfflineReason is the reason a ServerOffline fault in err's chain gives,
// e.g. "database outage", without Koji's exception name.
func OfflineReason(err error) string {
	var f *Fault
	if !errors.As(err, &f) {
		return ""
	}
	return strings.TrimPrefix(f.Message(), "koji.ServerOffline: ")
}
