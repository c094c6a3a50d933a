package node

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretFiles checks encrypt_key_file and ticket_key_file: read,
// trimmed and validated like the inline keys, refused when others may read
// them, and never together with the inline key.
func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	gossip := bytes.Repeat([]byte{0x5c}, 32)
	gossipB64 := base64.StdEncoding.EncodeToString(gossip)
	ticket := bytes.Repeat([]byte{0xa7}, 32)
	ticketHex := hex.EncodeToString(ticket)
	encOK := file("enc", "\n  "+gossipB64+"\n", 0o600)
	encShared := file("enc-shared", gossipB64, 0o640)
	encShort := file("enc-short", base64.StdEncoding.EncodeToString(gossip[:10]), 0o600)
	encEmpty := file("enc-empty", " \n", 0o600)
	tkOK := file("tk", ticketHex+"\n", 0o400)
	tkWorld := file("tk-world", ticketHex, 0o604)
	tkNotHex := file("tk-nothex", "not hex at all", 0o600)
	for _, tt := range []struct {
		name        string
		adjust      func(*Config)
		err         string // empty: valid
		enc, ticket []byte
	}{
		{"encrypt_key_file", func(c *Config) { c.EncryptKeyFile = encOK }, "", gossip, nil},
		{"encrypt_key_file group-readable", func(c *Config) { c.EncryptKeyFile = encShared }, "encrypt_key_file: \"" + encShared + "\" is readable by others", nil, nil},
		{"encrypt_key_file wrong size", func(c *Config) { c.EncryptKeyFile = encShort }, "encrypt_key_file: \"(hidden)\" must decode to 16, 24 or 32 bytes", nil, nil},
		{"encrypt_key_file empty", func(c *Config) { c.EncryptKeyFile = encEmpty }, "encrypt_key_file: \"" + encEmpty + "\" is empty", nil, nil},
		{"encrypt_key_file missing", func(c *Config) { c.EncryptKeyFile = filepath.Join(dir, "none") }, "encrypt_key_file: \"" + filepath.Join(dir, "none") + "\" cannot be read", nil, nil},
		{"encrypt_key and its file", func(c *Config) { c.EncryptKey = gossipB64; c.EncryptKeyFile = encOK }, "encrypt_key_file: \"" + encOK + "\" cannot be set together with encrypt_key", nil, nil},
		{"encrypt_key inline", func(c *Config) { c.EncryptKey = gossipB64 }, "", gossip, nil},
		{"ticket_key_file", func(c *Config) { c.TicketKeyFile = tkOK }, "", nil, ticket},
		{"ticket_key_file world-readable", func(c *Config) { c.TicketKeyFile = tkWorld }, "ticket_key_file: \"" + tkWorld + "\" is readable by others", nil, nil},
		{"ticket_key_file not hex", func(c *Config) { c.TicketKeyFile = tkNotHex }, "ticket_key_file: \"(hidden)\" is not hex", nil, nil},
		{"ticket_key and its file", func(c *Config) { c.TicketKey = ticketHex; c.TicketKeyFile = tkOK }, "ticket_key_file: \"" + tkOK + "\" cannot be set together with ticket_key", nil, nil},
		{"ticket_key inline", func(c *Config) { c.TicketKey = ticketHex }, "", nil, ticket},
		{"encrypt_key_file satisfies a farm", func(c *Config) {
			c.BootstrapExpect, c.DataDir, c.EncryptKeyFile = 3, dir, encOK
			c.TLS = TLSConfig{CAFile: "ca.pem", CertFile: "n.pem", KeyFile: "n.key"}
		}, "tls", nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.adjust(&c)
			rt, err := c.Build()
			if err != nil && (strings.Contains(err.Error(), gossipB64) || strings.Contains(err.Error(), ticketHex)) {
				t.Errorf("the error shows a key: %v", err)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "encrypt_key: \"\" must be set") {
					t.Errorf("encrypt_key_file did not count as encrypt_key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rt.Parsed.EncryptKey, tt.enc) || !bytes.Equal(rt.Parsed.TicketKey, tt.ticket) {
				t.Errorf("keys %x/%x, want %x/%x", rt.Parsed.EncryptKey, rt.Parsed.TicketKey, tt.enc, tt.ticket)
			}
		})
	}
}
