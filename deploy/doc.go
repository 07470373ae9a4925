// Package deploy holds what operators run mtuscope with (systemd units, a
// container image's Containerfile, Prometheus rules and dashboards) and the
// tests that check each file with the real tool that will read it.
package deploy
