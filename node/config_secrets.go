package node

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/usherlb/usher/cluster"
)

// minTokenLen is the shortest API token accepted: 16 characters, so that a
// token cannot be guessed within any plausible number of requests.
const minTokenLen = 16

// ticketKey returns the ticket key set by ticket_key or ticket_key_file,
// nil when neither is set or the key is refused.
func (c *Config) ticketKey(bad func(key, value, problem string)) []byte {
	v, from := readSecret("ticket_key", c.TicketKey, "ticket_key_file", c.TicketKeyFile, bad)
	if v == "" {
		return nil
	}
	k, err := hex.DecodeString(v)
	switch {
	case err != nil:
		bad(from, "(hidden)", "is not hex")
	case len(k) != cluster.TicketKeySize:
		bad(from, "(hidden)", fmt.Sprintf("must be %d bytes (%d hex digits; openssl rand -hex %d makes one)", cluster.TicketKeySize, 2*cluster.TicketKeySize, cluster.TicketKeySize))
	default:
		return k
	}
	return nil
}

// encryptKey returns the gossip key set by encrypt_key or
// encrypt_key_file, nil when neither is set or the key is refused.
func (c *Config) encryptKey(bad func(key, value, problem string)) []byte {
	v, from := readSecret("encrypt_key", c.EncryptKey, "encrypt_key_file", c.EncryptKeyFile, bad)
	if v == "" {
		return nil
	}
	k, err := base64.StdEncoding.DecodeString(v)
	switch {
	case err != nil:
		bad(from, "(hidden)", "is not base64")
	case len(k) != 16 && len(k) != 24 && len(k) != 32:
		bad(from, "(hidden)", "must decode to 16, 24 or 32 bytes")
	default:
		return k
	}
	return nil
}

// readToken returns the API token set inline (key) or in a file (fileKey);
// at most one may be set (see readSecret).
func readToken(key, inline, fileKey, file string, bad func(key, value, problem string)) string {
	tok, from := readSecret(key, inline, fileKey, file, bad)
	if tok == "" {
		return ""
	}
	if len(tok) < minTokenLen {
		bad(from, "(hidden)", fmt.Sprintf("is shorter than %d characters", minTokenLen))
		return ""
	}
	return tok
}

// readSecret returns a secret set inline (key) or in a file (fileKey), and
// the key it came from, for error messages; at most one may be set. A
// secret file must not be readable by the group or others; its contents are
// trimmed of surrounding white space. Both are empty when neither is set or
// the secret is refused (bad has been told why).
func readSecret(key, inline, fileKey, file string, bad func(key, value, problem string)) (secret, from string) {
	switch {
	case inline != "" && file != "":
		bad(fileKey, file, "cannot be set together with "+key)
		return "", ""
	case file == "":
		return inline, key
	}
	fi, err := os.Stat(file)
	if err != nil {
		bad(fileKey, file, "cannot be read: "+err.Error())
		return "", ""
	}
	if fi.Mode().Perm()&0o077 != 0 {
		bad(fileKey, file, fmt.Sprintf("is readable by others (mode %#o): chmod 600 it", fi.Mode().Perm()))
		return "", ""
	}
	b, err := os.ReadFile(file)
	if err != nil {
		bad(fileKey, file, "cannot be read: "+err.Error())
		return "", ""
	}
	secret = strings.TrimSpace(string(b))
	if secret == "" {
		bad(fileKey, file, "is empty")
		return "", ""
	}
	return secret, fileKey
}
