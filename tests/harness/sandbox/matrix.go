package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/fedora-infra/kojibot/tests/harness/matrixhs"
)

// MatrixBotUser is the localpart of the bot's Matrix account.
const MatrixBotUser = "kojibot"

// Matrix is the sandbox's Matrix homeserver, with the users and the room
// StartMatrix made.
type Matrix struct {
	// HS is the running Dendrite.
	HS *matrixhs.Server
	// RoomAlias is the ops room, "#fedora-admin:fedora.im"; RoomID its id.
	RoomAlias string
	RoomID    id.RoomID
	// Section is the bot's matrix: configuration for this homeserver
	// (serving and notifying the room), to merge with BotConfig.Extra.
	Section map[string]any
}

// StartMatrix builds Dendrite from the version tests/tools/go.mod pins (minutes
// the first time; then cached in matrixhs.BinDir), starts it under the
// sandbox's directory, creates the users (name → password) and the bot's
// account, and has the first user (by name) create the ops room. Close
// stops it.
func (s *Sandbox) StartMatrix(ctx context.Context, users map[string]string) (*Matrix, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	bin, err := matrixhs.Build(ctx, root)
	if err != nil {
		return nil, err
	}
	hs, err := matrixhs.Start(ctx, bin, filepath.Join(s.Dir, "dendrite"))
	if err != nil {
		return nil, err
	}
	m := &Matrix{HS: hs, RoomAlias: "#" + Channel[1:] + ":" + matrixhs.ServerName}
	s.mu.Lock()
	s.matrix = m
	s.mu.Unlock()
	creator := ""
	for name, pw := range users {
		if _, err := hs.CreateUser(ctx, name, pw); err != nil {
			return nil, err
		}
		if creator == "" || name < creator {
			creator = name
		}
	}
	botPassword := "pw-matrix-" + MatrixBotUser + "-sandbox"
	if _, err := hs.CreateUser(ctx, MatrixBotUser, botPassword); err != nil {
		return nil, err
	}
	if creator == "" {
		return nil, fmt.Errorf("sandbox: matrix: no user to create the room")
	}
	cli, err := mautrix.NewClient(hs.URL, "", "")
	if err != nil {
		return nil, err
	}
	if _, err := cli.Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword,
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: creator},
		Password:   users[creator], StoreCredentials: true}); err != nil {
		return nil, fmt.Errorf("sandbox: matrix: login %s: %w", creator, err)
	}
	resp, err := cli.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomAliasName: Channel[1:], Name: Channel[1:]})
	if err != nil {
		return nil, fmt.Errorf("sandbox: matrix: creating %s: %w", m.RoomAlias, err)
	}
	m.RoomID = resp.RoomID
	pwFile := filepath.Join(s.Dir, "matrix-password")
	if err := os.WriteFile(pwFile, []byte(botPassword+"\n"), 0o600); err != nil {
		return nil, err
	}
	m.Section = map[string]any{
		"homeserver":    hs.URL,
		"user_id":       "@" + MatrixBotUser + ":" + matrixhs.ServerName,
		"password_file": pwFile,
		"rooms":         []string{m.RoomAlias},
		"notify_room":   m.RoomAlias,
	}
	return m, nil
}
