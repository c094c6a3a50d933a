package cluster

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// The gossip keyring. Gossip is encrypted with the farm's keyring: one
// primary key that encrypts what a node sends, and up to MaxKeyringKeys-1
// more that it also accepts, so the key can change without a moment when
// two members cannot read each other (Consul's `consul keyring`). The
// keyring is farm state: an operator changes it through the leader (raft
// ops keyring_install, keyring_use, keyring_remove), and every node applies
// the farm's keyring to its memberlist from a goroutine of its own
// (runKeyring), within a second of learning it. Until the first change the
// farm's keyring is empty and each node gossips with its configured
// encrypt_key; the first change starts from the leader's keys.
//
// Nothing about the keyring is persisted outside raft: a restarted node
// starts with its configured encrypt_key plus, on a voter, the keyring of
// its last snapshot, and follows the farm's keyring from there. A node
// outside the raft configuration learns the farm's keyring from the
// leader's state message (Cluster.State), so only a node whose configured
// key is still in the farm's keyring can join.
//
// Keys never appear in logs, errors, Stats or the API: they are named by
// KeyFingerprint.

// MaxKeyringKeys bounds the farm's keyring.
const MaxKeyringKeys = 8

// ErrKeyring is wrapped by every refused keyring change: a key of the wrong
// size, a key that is not installed, removing the primary key, a full
// keyring, or a farm without gossip encryption.
var ErrKeyring = errors.New("keyring")

// Keyring is a gossip keyring: its keys and which of them is the primary.
// A Keyring is immutable once built; its methods return new ones.
type Keyring struct {
	// Keys are the installed keys, each 16, 24 or 32 bytes (AES-128,
	// -192 or -256).
	Keys [][]byte `json:"keys,omitempty"`
	// Primary is the index in Keys of the key that encrypts.
	Primary int `json:"primary,omitempty"`
}

// KeyFingerprint names a key without revealing it: the first 16 hex digits
// (8 bytes) of its SHA-256.
func KeyFingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

// Empty reports whether the keyring holds no key (the farm's keyring before
// any change).
func (k Keyring) Empty() bool { return len(k.Keys) == 0 }

// PrimaryKey returns the primary key, nil for an empty keyring.
func (k Keyring) PrimaryKey() []byte {
	if k.Primary < 0 || k.Primary >= len(k.Keys) {
		return nil
	}
	return k.Keys[k.Primary]
}

// Fingerprints returns the primary key's fingerprint and those of every
// key, in the keyring's order.
func (k Keyring) Fingerprints() (primary string, keys []string) {
	keys = make([]string, len(k.Keys))
	for i, key := range k.Keys {
		keys[i] = KeyFingerprint(key)
	}
	if p := k.PrimaryKey(); p != nil {
		primary = KeyFingerprint(p)
	}
	return primary, keys
}

// String names the keys by fingerprint, the primary starred, so that a
// Keyring logged by mistake shows no key.
func (k Keyring) String() string {
	primary, keys := k.Fingerprints()
	for i, fp := range keys {
		if fp == primary {
			keys[i] = "*" + fp
		}
	}
	return "keyring[" + strings.Join(keys, " ") + "]"
}

// GoString is String, for %#v.
func (k Keyring) GoString() string { return k.String() }

// Equal reports whether two keyrings hold the same keys in the same order
// with the same primary.
func (k Keyring) Equal(o Keyring) bool {
	return k.Primary == o.Primary && slices.EqualFunc(k.Keys, o.Keys, bytes.Equal)
}

// validKeySize reports whether key is an AES-128, -192 or -256 key.
func validKeySize(key []byte) error {
	switch len(key) {
	case 16, 24, 32:
		return nil
	}
	return fmt.Errorf("%w: a key of %d bytes is not 16, 24 or 32", ErrKeyring, len(key))
}

// validate checks a non-empty keyring: sizes, bounds, no duplicates.
func (k Keyring) validate() error {
	if len(k.Keys) == 0 || len(k.Keys) > MaxKeyringKeys {
		return fmt.Errorf("%w: %d keys is not 1 to %d", ErrKeyring, len(k.Keys), MaxKeyringKeys)
	}
	if k.Primary < 0 || k.Primary >= len(k.Keys) {
		return fmt.Errorf("%w: primary %d of %d keys", ErrKeyring, k.Primary, len(k.Keys))
	}
	for i, key := range k.Keys {
		if err := validKeySize(key); err != nil {
			return err
		}
		if k.index(key) != i {
			return fmt.Errorf("%w: key %s is there twice", ErrKeyring, KeyFingerprint(key))
		}
	}
	return nil
}

// index returns the index of key in the keyring, -1 if it is not there.
func (k Keyring) index(key []byte) int {
	return slices.IndexFunc(k.Keys, func(x []byte) bool { return bytes.Equal(x, key) })
}

// install returns the keyring with key added (unchanged if it is there).
func (k Keyring) install(key []byte) (Keyring, error) {
	if err := validKeySize(key); err != nil {
		return k, err
	}
	if k.index(key) >= 0 {
		return k, nil
	}
	if len(k.Keys) >= MaxKeyringKeys {
		return k, fmt.Errorf("%w: the keyring holds %d keys already; remove one first", ErrKeyring, MaxKeyringKeys)
	}
	keys := append(slices.Clip(slices.Clone(k.Keys)), bytes.Clone(key))
	return Keyring{Keys: keys, Primary: k.Primary}, nil
}

// use returns the keyring with key, which must be installed, as primary.
func (k Keyring) use(key []byte) (Keyring, error) {
	i := k.index(key)
	if i < 0 {
		return k, fmt.Errorf("%w: key %s is not installed; install it first", ErrKeyring, KeyFingerprint(key))
	}
	return Keyring{Keys: k.Keys, Primary: i}, nil
}

// remove returns the keyring without key, which must be installed and not
// the primary.
func (k Keyring) remove(key []byte) (Keyring, error) {
	i := k.index(key)
	switch {
	case i < 0:
		return k, fmt.Errorf("%w: key %s is not installed", ErrKeyring, KeyFingerprint(key))
	case i == k.Primary:
		return k, fmt.Errorf("%w: key %s is the primary key; use another first", ErrKeyring, KeyFingerprint(key))
	}
	keys := slices.Delete(slices.Clone(k.Keys), i, i+1)
	p := k.Primary
	if i < p {
		p--
	}
	return Keyring{Keys: keys, Primary: p}, nil
}

// keyringOp applies a keyring command to the farm's keyring cur. An empty
// farm keyring starts from the command's seed, the proposing leader's own
// keys; without a seed the farm has no gossip encryption to change.
func keyringOp(cur Keyring, cmd command) (Keyring, error) {
	if cur.Empty() {
		if cmd.Seed == nil {
			return cur, fmt.Errorf("%w: gossip encryption is off (no encrypt_key)", ErrKeyring)
		}
		if err := cmd.Seed.validate(); err != nil {
			return cur, err
		}
		cur = *cmd.Seed
	}
	switch cmd.Op {
	case opKeyringInstall:
		return cur.install(cmd.Key)
	case opKeyringUse:
		return cur.use(cmd.Key)
	case opKeyringRemove:
		return cur.remove(cmd.Key)
	}
	return cur, fmt.Errorf("%w: op %q", errBadCommand, cmd.Op)
}

// applyKeyring makes memberlist's keyring ring hold exactly the keys of kr
// with kr's primary: it adds the missing keys, switches the primary, then
// removes the keys kr no longer has, so that at no step does ring lose a
// key that kr keeps.
func applyKeyring(ring *memberlist.Keyring, kr Keyring) error {
	if err := kr.validate(); err != nil {
		return err
	}
	for _, key := range kr.Keys {
		if err := ring.AddKey(bytes.Clone(key)); err != nil {
			return fmt.Errorf("%w: install %s: %w", ErrKeyring, KeyFingerprint(key), err)
		}
	}
	if err := ring.UseKey(kr.PrimaryKey()); err != nil {
		return fmt.Errorf("%w: use %s: %w", ErrKeyring, KeyFingerprint(kr.PrimaryKey()), err)
	}
	for _, key := range slices.Clone(ring.GetKeys()) {
		if kr.index(key) < 0 {
			// RemoveKey edits the ring's slice in place, which readers may
			// hold; UseKey first installs a fresh one.
			if err := ring.UseKey(kr.PrimaryKey()); err != nil {
				return fmt.Errorf("%w: use %s: %w", ErrKeyring, KeyFingerprint(kr.PrimaryKey()), err)
			}
			if err := ring.RemoveKey(key); err != nil {
				return fmt.Errorf("%w: remove %s: %w", ErrKeyring, KeyFingerprint(key), err)
			}
		}
	}
	return nil
}

// newKeyring returns the memberlist keyring a node starts with: its
// configured key, followed at once by the farm's keyring when this node's
// state machine already holds one (a restarted voter). Nil without a
// configured key: gossip is not encrypted.
func (c *Cluster) newKeyring() (*memberlist.Keyring, error) {
	if len(c.cfg.EncryptKey) == 0 {
		return nil, nil
	}
	ring, err := memberlist.NewKeyring(nil, bytes.Clone(c.cfg.EncryptKey))
	if err != nil {
		return nil, fmt.Errorf("encrypt_key: %w", err)
	}
	if kr := c.fsm.state.Load().Keyring; !kr.Empty() {
		if err := applyKeyring(ring, kr); err != nil {
			return nil, err
		}
	}
	return ring, nil
}

// InstallKey adds key to the farm's gossip keyring through raft; every
// node then accepts gossip encrypted with it. On a node that is not the
// leader it returns a *NotLeaderError; a refused change wraps ErrKeyring.
func (c *Cluster) InstallKey(key []byte) error { return c.keyringCommand(opKeyringInstall, key) }

// UseKey makes key, which must be installed, the farm's primary gossip key
// through raft: every node then encrypts with it.
func (c *Cluster) UseKey(key []byte) error { return c.keyringCommand(opKeyringUse, key) }

// RemoveKey removes key, which must not be the primary, from the farm's
// gossip keyring through raft.
func (c *Cluster) RemoveKey(key []byte) error { return c.keyringCommand(opKeyringRemove, key) }

// keyringCommand proposes a keyring change, seeded with this node's own
// keyring while the farm has none.
func (c *Cluster) keyringCommand(op string, key []byte) error {
	if c.keyring == nil {
		return fmt.Errorf("%w: gossip encryption is off on this node (no encrypt_key)", ErrKeyring)
	}
	if err := validKeySize(key); err != nil {
		return err
	}
	cmd := command{Op: op, Key: bytes.Clone(key)}
	if c.fsm.state.Load().Keyring.Empty() {
		seed := c.LocalKeyring()
		cmd.Seed = &seed
	}
	if err := c.apply(cmd); err != nil {
		return err
	}
	c.logger.Info("gossip keyring changed", "op", op, "key", KeyFingerprint(key))
	return nil
}

// LocalKeyring returns the keys this node's memberlist uses now (empty when
// gossip is not encrypted).
func (c *Cluster) LocalKeyring() Keyring {
	if c.keyring == nil {
		return Keyring{}
	}
	keys := c.keyring.GetKeys() // the primary first
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = bytes.Clone(k)
	}
	return Keyring{Keys: out, Primary: 0}
}

// keyringSync is how often runKeyring checks the farm's keyring without
// being woken (a member outside raft learns it from state messages).
const keyringSync = time.Second

// runKeyring applies the farm's keyring to memberlist whenever it changes:
// at once when this node's state machine changes, else within keyringSync.
func (c *Cluster) runKeyring() {
	t := time.NewTicker(keyringSync)
	defer t.Stop()
	var applied Keyring
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		case <-c.keyringWake:
		}
		kr := c.State().Keyring
		if kr.Empty() || kr.Equal(applied) {
			continue
		}
		if err := applyKeyring(c.keyring, kr); err != nil {
			c.logger.Error("applying the farm's gossip keyring", "error", err)
			continue
		}
		applied = kr
		primary, keys := kr.Fingerprints()
		c.logger.Info("applied the farm's gossip keyring", "primary", primary, "keys", strings.Join(keys, ","))
	}
}
