package cli

import (
	"bytes"
	"fmt"
	"io"
	"net/url"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/mtuscope/mtuscope/server"
	"github.com/mtuscope/mtuscope/watch"
)

// redacted is what --check-config prints in place of a secret.
const redacted = "REDACTED"

// printConfig writes what --check-config prints: a comment line with the
// summary, then the effective configuration as YAML, every key with its
// value, readable again by --config (secrets aside).
func printConfig(w io.Writer, summary string, cfg any) error {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return withExit(ExitProblem, fmt.Errorf("print the configuration: %w", err))
	}
	if _, err := fmt.Fprintf(w, "# %s\n%s", summary, b.Bytes()); err != nil {
		return withExit(ExitProblem, err)
	}
	return nil
}

// redactServe hides the operator token, from the file or $MTUSCOPE_TOKEN,
// which server.New prefers; whether one is set is worth knowing.
func redactServe(c server.Config) server.Config {
	if c.Token != "" || os.Getenv("MTUSCOPE_TOKEN") != "" {
		c.Token = redacted
	}
	return c
}

// redactWatch hides the passwords and query strings of the alert URLs
// (Alertmanager behind basic auth, a webhook with a key in its query).
func redactWatch(c watch.Config) watch.Config {
	c.Alertmanager = redactURL(c.Alertmanager)
	c.Webhook = redactURL(c.Webhook)
	return c
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || s == "" {
		return s
	}
	if u.RawQuery != "" {
		u.RawQuery = redacted
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), redacted)
	}
	return u.String()
}
