package config

import "strings"

// DefaultUser is the user portleased runs as after its start ("user NAME").
const DefaultUser = "portleased"

// maxUserName is the longest user name useradd(8) accepts.
const maxUserName = 32

// user parses "user NAME": the unprivileged user whose uid and primary gid
// the daemon takes once it has read its configuration and prepared its
// state directory. Whether the user exists is the daemon's to check.
func (p *parser) user(s statement) {
	args := s.tokens[1:]
	if len(args) == 0 {
		p.errorf(s.line, "user: missing user name")
		return
	}
	if !p.once(s.line, &p.cfg.UserLine, "user") {
		return
	}
	name := args[0]
	if p.extra("user", args[1:]) {
		return
	}
	if msg := userNameProblem(name.text); msg != "" {
		p.errorf(name.line, "user: %q %s", name.text, msg)
		return
	}
	p.cfg.User = name.text
}

// userNameProblem returns why s is not a user name, "" if it is one: 1 to
// 32 letters, digits, '.', '_' or '-', not starting with '-' and not all
// digits (a uid, which the daemon would look up as a name).
func userNameProblem(s string) string {
	switch {
	case s == "" || len(s) > maxUserName:
		return "is not 1 to 32 characters long"
	case s[0] == '-':
		return "starts with '-'"
	case strings.Trim(s, "0123456789") == "":
		return "is a number; name the user"
	case strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "":
		return "is not a user name (letters, digits, '.', '_', '-')"
	}
	return ""
}
