package cluster

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-metrics"
)

// A receiver learns node N's key from N's certificate chain, which it
// checks with TLS.VerifyPeer (this farm's CA, this farm, naming N).
// Certificates are public, so anyone may relay them; two memberlist user
// messages carry them:
//
//	cert request: kind (1, msgCertRequest) | from length (1) | from |
//	              to length (1) | to
//	cert:         kind (1, msgCert) | name length (1) | name |
//	              count (1) | (length (2) | DER)...
//
// A node that receives a message signed by a key it does not know for
// the signer asks the signer for its certificate (at most once per
// second per signer; for metadata, only a node that may lead or
// bootstrap: see askForMeta); the signer answers the node named in from, if it is
// a member, with its chain (at most once per second per requester and
// certAnswersPerSecond in all, so a request is never amplified beyond a
// small bounded rate). A node also pushes its certificate to each voter it
// starts reporting to, and to every member when its certificate is
// reloaded. A cert message whose certificate does not name the node the
// message names is dropped.
const (
	msgCertRequest = 3
	msgCert        = 4
)

// Bounds of the certificate directory and its messages.
const (
	maxChainCerts        = 4    // certificates in a cert message
	maxCertDER           = 4096 // bytes of one certificate
	keysPerNode          = 4    // certificates kept per node
	certAskEvery         = time.Second
	certAnswerEvery      = time.Second
	certAnswersPerSecond = 16
	authJobs             = 64 // cert messages queued for the worker
	// maxBestEffortCert is the largest cert message sent in a UDP
	// packet; larger ones go over memberlist's TCP stream.
	maxBestEffortCert = 1200
)

// appendCertRequest appends a cert request from node from to node to.
func appendCertRequest(dst []byte, from, to string) ([]byte, error) {
	if len(from) == 0 || len(from) > maxNodeNameLen || len(to) == 0 || len(to) > maxNodeNameLen {
		return dst, fmt.Errorf("cert request names of %d and %d bytes", len(from), len(to))
	}
	dst = append(dst, msgCertRequest, byte(len(from)))
	dst = append(dst, from...)
	dst = append(dst, byte(len(to)))
	return append(dst, to...), nil
}

// decodeCertRequest parses a cert request.
func decodeCertRequest(b []byte) (from, to string, err error) {
	d := decoder{b: b}
	if kind := d.byte(); d.err == nil && kind != msgCertRequest {
		return "", "", fmt.Errorf("%w: not a cert request", ErrBadReport)
	}
	from = string(d.bytes(int(d.byte())))
	to = string(d.bytes(int(d.byte())))
	switch {
	case d.err != nil:
		return "", "", d.err
	case len(d.b) != 0:
		return "", "", fmt.Errorf("%w: %d trailing bytes in a cert request", ErrBadReport, len(d.b))
	case from == "" || to == "":
		return "", "", fmt.Errorf("%w: cert request without a name", ErrBadReport)
	}
	return from, to, nil
}

// appendCertMsg appends the cert message of node name carrying chain.
func appendCertMsg(dst []byte, name string, chain [][]byte) ([]byte, error) {
	if len(name) == 0 || len(name) > maxNodeNameLen {
		return dst, fmt.Errorf("node name of %d bytes", len(name))
	}
	if len(chain) == 0 || len(chain) > maxChainCerts {
		return dst, fmt.Errorf("a chain of %d certificates", len(chain))
	}
	dst = append(dst, msgCert, byte(len(name)))
	dst = append(dst, name...)
	dst = append(dst, byte(len(chain)))
	for _, der := range chain {
		if len(der) == 0 || len(der) > maxCertDER {
			return dst, fmt.Errorf("a certificate of %d bytes", len(der))
		}
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(der)))
		dst = append(dst, der...)
	}
	return dst, nil
}

// decodeCertMsg parses a cert message.
func decodeCertMsg(b []byte) (string, [][]byte, error) {
	d := decoder{b: b}
	if kind := d.byte(); d.err == nil && kind != msgCert {
		return "", nil, fmt.Errorf("%w: not a cert message", ErrBadReport)
	}
	name := string(d.bytes(int(d.byte())))
	n := int(d.byte())
	if d.err == nil && (n == 0 || n > maxChainCerts) {
		return "", nil, fmt.Errorf("%w: %d certificates in a cert message", ErrBadReport, n)
	}
	var chain [][]byte
	for ; n > 0 && d.err == nil; n-- {
		l := int(d.uint16())
		if d.err == nil && (l == 0 || l > maxCertDER) {
			return "", nil, fmt.Errorf("%w: a certificate of %d bytes", ErrBadReport, l)
		}
		if d.err == nil && len(d.b) < l {
			d.err = fmt.Errorf("%w: truncated", ErrBadReport)
			break
		}
		chain = append(chain, bytes.Clone(d.b[:l]))
		d.b = d.b[l:]
	}
	switch {
	case d.err != nil:
		return "", nil, d.err
	case len(d.b) != 0:
		return "", nil, fmt.Errorf("%w: %d trailing bytes in a cert message", ErrBadReport, len(d.b))
	case name == "":
		return "", nil, fmt.Errorf("%w: cert message without a name", ErrBadReport)
	}
	return name, chain, nil
}

// dirEntry is one verified certificate of a node.
type dirEntry struct {
	id   keyID
	leaf *x509.Certificate
}

// authJob is work for the gossip authenticator's goroutine.
type authJob struct {
	kind byte   // msgCertRequest or msgCert: a received message; 0: send
	b    []byte // the message
	to   string // the node to send this node's certificate to
}

// gossipAuth signs this node's gossip and checks everyone else's (see
// "Gossip is bound to its sender" in the package documentation). It keeps
// the certificate directory: the verified certificates of the farm's
// nodes, by name. Its methods are safe for concurrent use; memberlist's
// callbacks only verify and queue, the exchange of certificates runs on
// the goroutine run starts.
type gossipAuth struct {
	src    TLS
	name   string
	logger hclog.Logger
	now    func() time.Time
	// send sends a message to a member by name; reliable asks for
	// memberlist's stream. Set before run.
	send func(to string, msg []byte, reliable bool) error
	// learned is called after a node's certificate was learned, from
	// the authenticator's goroutine.
	learned func(name string)
	// askForMeta, if set, reports whether metadata signed by an unknown
	// key makes this node ask for the signer's certificate. Only a node
	// that may lead or bootstrap acts on the other members' metadata:
	// were every member to fetch every other's certificate, a farm's
	// start would cost a request and a certificate per pair of members.
	askForMeta func() bool

	local atomic.Pointer[localKey]

	mu     sync.Mutex
	certs  map[string][]dirEntry
	active map[string]keyID         // the key of the last verified message by node
	asked  map[string]time.Duration // last cert request sent, by node

	jobs chan authJob

	// The goroutine's own: last certificate sent by node, and the
	// answers sent in the current second.
	sent         map[string]time.Duration
	answerSecond time.Duration
	answers      int

	unauthenticated atomic.Uint64
	lastWarn        atomic.Int64
	suppressed      atomic.Uint64
}

// newGossipAuth returns the authenticator of node name with certificates
// from src. It fails if src's key cannot sign metadata small enough for
// memberlist.
func newGossipAuth(src TLS, name string, logger hclog.Logger) (*gossipAuth, error) {
	a := &gossipAuth{
		src:    src,
		name:   name,
		logger: logger,
		now:    time.Now,
		certs:  map[string][]dirEntry{},
		active: map[string]keyID{},
		asked:  map[string]time.Duration{},
		jobs:   make(chan authJob, authJobs),
		sent:   map[string]time.Duration{},
	}
	if _, err := a.refresh(); err != nil {
		return nil, err
	}
	return a, nil
}

// refresh derives the signing key from the current certificate when it
// changed (a reload), records it in the directory, and reports whether it
// changed.
func (a *gossipAuth) refresh() (bool, error) {
	cert := a.src.Certificate()
	if k := a.local.Load(); k != nil && k.cert == cert {
		return false, nil
	}
	k, err := newLocalKey(cert)
	if err != nil {
		return false, fmt.Errorf("tls certificate: %w", err)
	}
	sig, err := signDigest(k.key, gossipDigest(sigMeta, k.farm, a.name, nil))
	if err != nil {
		return false, fmt.Errorf("tls key: %w", err)
	}
	if len(sig) > maxMetaSigLen {
		return false, fmt.Errorf("tls key: its signatures take %d bytes, gossip metadata has room for %d (use an ECDSA P-256 key)", len(sig), maxMetaSigLen)
	}
	a.local.Store(k)
	a.mu.Lock()
	a.addLocked(a.name, dirEntry{id: k.id, leaf: k.leaf})
	a.active[a.name] = k.id
	a.mu.Unlock()
	return true, nil
}

// key returns this node's signing key.
func (a *gossipAuth) key() *localKey { return a.local.Load() }

// addLocked records a verified certificate of name, replacing one of the
// same key and dropping the oldest beyond keysPerNode.
func (a *gossipAuth) addLocked(name string, e dirEntry) {
	list := a.certs[name]
	for i, old := range list {
		if old.id == e.id {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	list = append(list, e)
	if len(list) > keysPerNode {
		list = list[len(list)-keysPerNode:]
	}
	a.certs[name] = list
}

// lookup returns name's certificate of key id, if known and unexpired.
func (a *gossipAuth) lookup(name string, id keyID) (*x509.Certificate, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.certs[name] {
		if e.id == id {
			return e.leaf, a.now().Before(e.leaf.NotAfter)
		}
	}
	return nil, false
}

// activeCert returns the certificate of the key name last signed a
// verified message with, if any.
func (a *gossipAuth) activeCert(name string) (*x509.Certificate, bool) {
	a.mu.Lock()
	id, ok := a.active[name]
	a.mu.Unlock()
	if !ok {
		return nil, false
	}
	return a.lookup(name, id)
}

// verify checks that trailer signs msg as kind by signer under a key of
// signer's certificate. An unknown key makes it ask signer for its
// certificate. Every failure is counted and logged (rate-limited).
func (a *gossipAuth) verify(kind byte, signer string, msg, trailer []byte) (keyID, error) {
	id, sig, err := parseTrailer(trailer)
	if err != nil {
		a.drop(signer, err)
		return keyID{}, err
	}
	cert, ok := a.lookup(signer, id)
	if !ok {
		if kind != sigMeta || a.askForMeta == nil || a.askForMeta() {
			a.ask(signer)
		}
		a.drop(signer, errUnknownKey)
		return keyID{}, errUnknownKey
	}
	if !verifyDigest(cert.PublicKey, gossipDigest(kind, a.key().farm, signer, msg), sig) {
		err := fmt.Errorf("%w: bad signature", errUnauthenticated)
		a.drop(signer, err)
		return keyID{}, err
	}
	a.mu.Lock()
	a.active[signer] = id
	a.mu.Unlock()
	return id, nil
}

// drop counts an unauthenticated message and logs it at most once per
// rejectLogEvery (an unknown key, expected while certificates spread,
// only at Debug).
func (a *gossipAuth) drop(signer string, err error) {
	a.unauthenticated.Add(1)
	metrics.IncrCounter([]string{"cluster", "gossip", "unauthenticated"}, 1)
	now := int64(Monotonic())
	last := a.lastWarn.Load()
	if last != 0 && now-last < int64(rejectLogEvery) || !a.lastWarn.CompareAndSwap(last, now) {
		a.suppressed.Add(1)
		return
	}
	log := a.logger.Warn
	if errors.Is(err, errUnknownKey) {
		log = a.logger.Debug
	}
	log("dropped unauthenticated gossip", "signer", signer, "error", err,
		"dropped_since_last_warning", a.suppressed.Swap(0))
}

// forget drops the certificates, active keys and pending requests of every
// node but this one that known lacks (the members the member table still
// holds and the servers of the raft configuration): a farm whose members
// come and go under new names would otherwise keep every certificate it
// ever learned. A node that comes back is asked for its certificate
// again, as any new member is.
func (a *gossipAuth) forget(known map[string]bool) {
	gone := func(name string) bool { return name != a.name && !known[name] }
	a.mu.Lock()
	defer a.mu.Unlock()
	maps.DeleteFunc(a.certs, func(name string, _ []dirEntry) bool { return gone(name) })
	maps.DeleteFunc(a.active, func(name string, _ keyID) bool { return gone(name) })
	maps.DeleteFunc(a.asked, func(name string, _ time.Duration) bool { return gone(name) })
}

// ask queues a cert request to name, at most once per certAskEvery.
func (a *gossipAuth) ask(name string) {
	if name == a.name {
		return
	}
	now := Monotonic()
	a.mu.Lock()
	last, ok := a.asked[name]
	if ok && now-last < certAskEvery {
		a.mu.Unlock()
		return
	}
	if len(a.asked) > 4096 {
		clear(a.asked) // bounded: names come from the network
	}
	a.asked[name] = now
	a.mu.Unlock()
	msg, err := appendCertRequest(nil, a.name, name)
	if err != nil {
		return
	}
	a.queue(authJob{b: msg, to: name})
}

// push queues this node's certificate for node to.
func (a *gossipAuth) push(to string) { a.queue(authJob{to: to}) }

// take queues a received cert request or cert message (memberlist's
// buffer is copied).
func (a *gossipAuth) take(b []byte) { a.queue(authJob{kind: b[0], b: bytes.Clone(b)}) }

func (a *gossipAuth) queue(j authJob) {
	select {
	case a.jobs <- j:
	default:
		metrics.IncrCounter([]string{"cluster", "gossip", "cert_queue_full"}, 1)
	}
}

// run exchanges certificates until stop is closed.
func (a *gossipAuth) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case j := <-a.jobs:
			a.do(j)
		}
	}
}

func (a *gossipAuth) do(j authJob) {
	switch j.kind {
	case msgCert:
		name, chain, err := decodeCertMsg(j.b)
		if err == nil {
			err = a.learn(name, chain)
		}
		if err != nil {
			a.drop(name, fmt.Errorf("%w: certificate: %w", errUnauthenticated, err))
		}
	case msgCertRequest:
		from, to, err := decodeCertRequest(j.b)
		if err != nil || to != a.name || a.sentRecently(from) || !a.answerBudget() {
			return // a node sent the certificate a moment ago costs no budget
		}
		a.sendCert(from)
	case 0:
		if j.b != nil {
			if err := a.send(j.to, j.b, false); err != nil {
				// The member may not be in the table yet: the next
				// message it signs asks again.
				a.mu.Lock()
				delete(a.asked, j.to)
				a.mu.Unlock()
				a.logger.Trace("asking for a certificate", "node", j.to, "error", err)
			}
			return
		}
		a.sendCert(j.to)
	}
}

// answerBudget reports whether one more answer fits this second's budget.
func (a *gossipAuth) answerBudget() bool {
	now := Monotonic()
	if now-a.answerSecond >= time.Second {
		a.answerSecond, a.answers = now, 0
	}
	if a.answers >= certAnswersPerSecond {
		return false
	}
	a.answers++
	return true
}

// sentRecently reports whether this node's certificate went to node to
// less than certAnswerEvery ago.
func (a *gossipAuth) sentRecently(to string) bool {
	last, ok := a.sent[to]
	return ok && Monotonic()-last < certAnswerEvery
}

// sendCert sends this node's certificate chain to node to, at most once
// per certAnswerEvery.
func (a *gossipAuth) sendCert(to string) {
	if a.sentRecently(to) {
		return
	}
	now := Monotonic()
	if len(a.sent) > 4096 {
		clear(a.sent)
	}
	k := a.key()
	msg, err := appendCertMsg(nil, a.name, k.chain)
	if err != nil {
		a.logger.Error("encoding this node's certificate", "error", err)
		return
	}
	if err := a.send(to, msg, len(msg) > maxBestEffortCert); err != nil {
		a.logger.Trace("sending the certificate", "to", to, "error", err)
		return
	}
	a.sent[to] = now
}

// learn verifies a chain relayed for name and records it. A chain that
// is already known is not verified again.
func (a *gossipAuth) learn(name string, chain [][]byte) error {
	a.mu.Lock()
	for _, e := range a.certs[name] {
		if bytes.Equal(e.leaf.Raw, chain[0]) {
			a.mu.Unlock()
			return nil
		}
	}
	a.mu.Unlock()
	certs := make([]*x509.Certificate, len(chain))
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		certs[i] = c
	}
	node, err := a.src.VerifyPeer(certs)
	if err != nil {
		return err
	}
	if node != name {
		return fmt.Errorf("the certificate names node %q, the message %q", node, name)
	}
	a.mu.Lock()
	a.addLocked(name, dirEntry{id: keyIDOf(certs[0]), leaf: certs[0]})
	a.mu.Unlock()
	a.logger.Debug("learned a node certificate", "node", name, "serial", certs[0].SerialNumber)
	if a.learned != nil {
		a.learned(name)
	}
	return nil
}
