package diagnose

import "slices"

// Where each fix of content comes from (checked 2026-12):
//   - GODEBUG=tlsmlkem=0: Go 1.24 release notes and crypto/tls docs.
//   - OpenSSL 3.5+ Groups: SSL_CTX_set1_groups_list(3): a "*" before a
//     group sends its key share; with none marked, only the leftmost
//     group's share is sent; "?" only tolerates a group the build lacks;
//     "-" removes a group from DEFAULT.
//   - PostQuantumKeyAgreementEnabled: chromestatus feature 5257822742249472
//     (available through Chrome 145, removed in Chrome 147).
//   - ML-DSA resets: golang/go#81199; PQ resets: Fortinet KB 357555 and
//     the reports the issue cites.

// hasCause reports whether v is among the diagnosis' causes.
func (d *Diagnosis) hasCause(v Verdict) bool { return d.Verdict == v || slices.Contains(d.Causes, v) }

// goDisableMLKEM is the Go stopgap for hellos too large or too new for
// the path.
var goDisableMLKEM = Fix{
	Code: "go_disable_mlkem", Where: "client",
	Title:    "Stopgap for Go clients (Go 1.24+): a smaller ClientHello without the post-quantum key share",
	Commands: []string{"GODEBUG=tlsmlkem=0"},
}

// contentFixes lists the fixes for the causes of content, per audience:
// the network team, the service operator, the client side.
func contentFixes(d *Diagnosis, have []Fix) []Fix {
	var out []Fix
	add := func(f Fix) {
		if !slices.ContainsFunc(append(have, out...), func(g Fix) bool { return g.Code == f.Code }) {
			out = append(out, f)
		}
	}
	if d.hasCause(VerdictPQRejected) {
		add(Fix{Code: "device_allow_pq", Where: "network",
			Title: "Update or reconfigure the firewall or TLS-inspection device on this path so that it passes ClientHellos carrying the " +
				"X25519MLKEM768 key share (0x11EC): upgrade its software, or exempt the signature or inspection profile that resets them " +
				"(reported for Palo Alto threat signatures, F5, and FortiGate flow-mode inspection: Fortinet KB 357555)"})
		add(Fix{Code: "operator_pq_device", Where: "server",
			Title: "If the device is one in front of your own servers (a WAF, load balancer or firewall), fix it there; otherwise nothing " +
				"on the server helps this network, and its clients need the network fix or a client-side stopgap below"})
		add(goDisableMLKEM)
		openssl := Fix{Code: "openssl_groups_no_pq", Where: "client",
			Title:    "OpenSSL 3.5+ clients: leave X25519MLKEM768 out of the Groups setting (openssl.cnf, system_default section)",
			Commands: []string{"Groups = DEFAULT:-X25519MLKEM768"}}
		if variantPassed(d, VariantPQOffered) {
			openssl.Title += "; or keep offering it without its key share by marking only X25519 with \"*\" (this server then " +
				"completed without asking for the post-quantum share; a server that asks for it with a HelloRetryRequest fails the same way)"
			openssl.Commands = append(openssl.Commands, "Groups = *X25519:X25519MLKEM768:secp256r1:secp384r1")
		}
		add(openssl)
		add(Fix{Code: "chrome_pq_policy", Where: "client",
			Title: "Chrome and Edge: the PostQuantumKeyAgreementEnabled enterprise policy set to false turns the key share off, but only " +
				"through Chrome 145: it is removed in Chrome 147, after which only the network fix helps",
			Commands: []string{`{"PostQuantumKeyAgreementEnabled": false}   (Linux: /etc/opt/chrome/policies/managed/pq.json)`}})
	}
	if d.hasCause(VerdictMLDSARejected) {
		add(Fix{Code: "device_allow_mldsa", Where: "network",
			Title: "Update or reconfigure the device on this path that resets ClientHellos offering the ML-DSA signature algorithms " +
				"0x0904-0x0906 (golang/go#81199): upgrade its software or exempt the signature that matches them"})
		add(Fix{Code: "client_mldsa", Where: "client",
			Title: "Clients: Go 1.27 and Chrome 150 offer these algorithms by default; mtuscope knows no documented switch that turns " +
				"them off, so a client built with an older release (Go 1.26) is the only stopgap until the device is fixed"})
	}
	if d.hasCause(VerdictLengthRejected) {
		add(Fix{Code: "device_length_window", Where: "network",
			Title: "Update the device on this path that mishandles ClientHellos of 256 to 511 bytes; until then, clients whose hellos " +
				"are padded out of that window (RFC 7685, as Chrome does) or are larger pass"})
	}
	if d.hasCause(VerdictSplitIntolerant) {
		add(Fix{Code: "device_reassemble", Where: "network",
			Title: "Have the device on this path reassemble TCP segments and TLS records before it inspects a ClientHello, or exempt " +
				"this traffic from inspection: a post-quantum ClientHello (1.5-1.8 KB) never fits one segment"})
		add(goDisableMLKEM)
	}
	if d.hasCause(VerdictSNIRejected) {
		add(Fix{Code: "allow_server_name", Where: "network",
			Title: "Something on this path filters TLS connections by the server name they ask for: allow this server's name on the " +
				"filtering device (a policy, not a fault, if it was meant)"})
	}
	return out
}

// ContentFixes returns the fixes Diagnose gives for causes of content,
// per audience, for a caller that knows the candidate causes but cannot
// tell them apart (serve's page, whose browser hello cannot be varied).
func ContentFixes(causes ...Verdict) []Fix {
	return contentFixes(&Diagnosis{Causes: causes}, nil)
}

// variantPassed reports whether a finding says the variant completed:
// only the post-quantum finding records it.
func variantPassed(d *Diagnosis, name string) bool {
	for _, f := range d.Findings {
		if f.Code == string(VerdictPQRejected) && name == VariantPQOffered && f.Evidence["group_without_share"] == "completed" {
			return true
		}
	}
	return false
}
