// Command franz-go-secured drives a secured Kafka listener with franz-go:
// TLS (Go's crypto/tls), mutual TLS, SASL PLAIN, SCRAM-SHA-512 over TLS and
// OAUTHBEARER with JSON Web Tokens signed here (Go's crypto/rsa, RS256).
//
// usage: franz-go-secured keygen DIR
//
//	writes DIR/rs256.pem (a private key) and DIR/jwks.json (its public
//	half, kid rs-1), for the broker to check tokens against
//
// usage: franz-go-secured SECURITY BOOTSTRAP DIR TOPIC
//
// DIR holds ca.pem (the broker certificate's authority), other-ca.pem
// (another), client.pem and client.key (a client certificate of ca.pem),
// other-client.pem and other-client.key (one of other-ca.pem) and, for
// oauthbearer, rs256.pem. The broker's users include alice:alice-secret.
//
// For each SECURITY it makes a round trip with good settings (create the
// topic TOPIC-1 with kadm, produce records to its partition 0, read them
// back from the start and compare them one by one), checks that a client
// with bad settings is refused with the error that names the reason (a
// TLS error, or the broker's SASL_AUTHENTICATION_FAILED and its text), and
// makes a second round trip (TOPIC-2), so that the broker is seen serving
// after the refusal. The records: key `key-INDEX`, value `TOPIC-N INDEX`.
//
//   - ssl: trusting ca.pem; refused: trusting other-ca.pem (the client
//     does not verify the broker's certificate);
//   - mutual-tls: presenting client.pem; refused: presenting nothing (the
//     broker's alert "certificate required"), and presenting
//     other-client.pem (its alert "unknown certificate authority"; sent
//     although the broker's request names only ca.pem, which Go's client
//     would otherwise answer with no certificate);
//   - sasl-plain: SASL_PLAINTEXT, PLAIN as alice; refused: a wrong password;
//   - sasl-ssl-scram: SASL_SSL trusting ca.pem, SCRAM-SHA-512 as alice;
//     refused: a wrong password;
//   - oauthbearer: SASL_PLAINTEXT, a token for alice (issuer
//     https://idp.test, audience sluice) that lasts 10 minutes; refused: a
//     token that expired 2 minutes ago.
package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

const (
	records  = 200
	issuer   = "https://idp.test"
	audience = "sluice"
	keyID    = "rs-1"
	// timeout bounds one admin call, producing, or reading everything back.
	timeout = 60 * time.Second
	// refusalTimeout bounds a refused client's attempt: it is refused
	// within a round trip or two, and runs into this only if it is not.
	refusalTimeout = 20 * time.Second
)

var started = time.Now()

func say(format string, args ...any) {
	fmt.Printf("[franz-go %6.2fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}

func fail(format string, args ...any) {
	fmt.Printf("franz-go: "+format+"\n", args...)
	os.Exit(1)
}

func keygen(dir string) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		fail("generating a key: %v", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		fail("encoding the key: %v", err)
	}
	block := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "rs256.pem"), block, 0o600); err != nil {
		fail("%v", err)
	}
	encode := base64.RawURLEncoding.EncodeToString
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": keyID, "use": "sig", "alg": "RS256",
		"n": encode(key.N.Bytes()),
		"e": encode(big.NewInt(int64(key.E)).Bytes()),
	}}})
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), jwks, 0o644); err != nil {
		fail("%v", err)
	}
}

func readKey(path string) *rsa.PrivateKey {
	text, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	block, _ := pem.Decode(text)
	if block == nil {
		fail("no PEM in %s", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		fail("%s: %v", path, err)
	}
	return key.(*rsa.PrivateKey)
}

// token is a JWT for alice, signed with key (RS256), that expires
// lifetime from now (in the past if negative).
func token(key *rsa.PrivateKey, lifetime time.Duration) string {
	now := time.Now()
	part := func(object map[string]any) string {
		text, _ := json.Marshal(object)
		return base64.RawURLEncoding.EncodeToString(text)
	}
	signed := part(map[string]any{"alg": "RS256", "kid": keyID, "typ": "JWT"}) + "." +
		part(map[string]any{"sub": "alice", "iss": issuer, "aud": audience,
			"iat": now.Unix(), "exp": now.Add(lifetime).Unix()})
	digest := sha256.Sum256([]byte(signed))
	signature, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		fail("signing a token: %v", err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(signature)
}

// security is how a client connects: over TLS if tls is set, with SASL
// if mechanism is.
type security struct {
	tls       *tls.Config
	mechanism sasl.Mechanism
}

func (s security) options(bootstrap string) []kgo.Opt {
	options := []kgo.Opt{kgo.SeedBrokers(bootstrap), kgo.DialTimeout(10 * time.Second)}
	if s.tls != nil {
		// The broker's name (127.0.0.1) is checked against its
		// certificate: franz-go sets ServerName to the host dialed.
		options = append(options, kgo.DialTLSConfig(s.tls))
	}
	if s.mechanism != nil {
		options = append(options, kgo.SASL(s.mechanism))
	}
	return options
}

// expectation is an error a refusal must be, and how to tell it.
type expectation struct {
	text    string
	matches func(error) bool
}

// refusal is a bad client's security and what its refusal must be.
type refusal struct {
	label    string
	security security
	expected expectation
}

// remoteAlert is the TLS alert the broker sent, as Go's crypto/tls
// reports it ("remote error: tls: ...").
func remoteAlert(alert string) expectation {
	return expectation{"the broker's TLS alert " + alert, func(err error) bool {
		var remote *net.OpError
		return errors.As(err, &remote) && remote.Op == "remote error" &&
			remote.Err.Error() == "tls: "+alert
	}}
}

// unknownAuthority is the client's verification of the broker's
// certificate failing: it chains to no authority the client trusts.
var unknownAuthority = expectation{"a broker certificate of an unknown authority", func(err error) bool {
	var verification *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	return errors.As(err, &verification) && errors.As(verification.Err, &unknown)
}}

// authenticationFailed is the broker's SASL_AUTHENTICATION_FAILED, with
// reason in its message.
func authenticationFailed(reason string) expectation {
	return expectation{"SASL_AUTHENTICATION_FAILED (" + reason + ")", func(err error) bool {
		return errors.Is(err, kerr.SaslAuthenticationFailed) && strings.Contains(err.Error(), reason)
	}}
}

func settings(name, dir string) (security, []refusal) {
	file := func(name string) string { return filepath.Join(dir, name) }
	trusting := func(ca string) *tls.Config {
		text, err := os.ReadFile(file(ca))
		if err != nil {
			fail("%v", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(text) {
			fail("no certificate in %s", ca)
		}
		return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	pair := func(client string) tls.Certificate {
		pair, err := tls.LoadX509KeyPair(file(client+".pem"), file(client+".key"))
		if err != nil {
			fail("%s: %v", client, err)
		}
		return pair
	}
	// Go sends a certificate of Certificates only if it chains to an
	// authority the broker's request names.
	presenting := func(ca, client string) *tls.Config {
		config := trusting(ca)
		config.Certificates = []tls.Certificate{pair(client)}
		return config
	}
	// The certificate sent whatever the broker names, for the broker to
	// judge.
	insisting := func(ca, client string) *tls.Config {
		config := trusting(ca)
		certificate := pair(client)
		config.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &certificate, nil
		}
		return config
	}
	plainAs := func(password string) sasl.Mechanism {
		return plain.Auth{User: "alice", Pass: password}.AsMechanism()
	}
	scramAs := func(password string) sasl.Mechanism {
		return scram.Auth{User: "alice", Pass: password}.AsSha512Mechanism()
	}
	switch name {
	case "ssl":
		return security{tls: trusting("ca.pem")}, []refusal{{
			"trusting another CA", security{tls: trusting("other-ca.pem")}, unknownAuthority,
		}}
	case "mutual-tls":
		return security{tls: presenting("ca.pem", "client")}, []refusal{
			{"without a client certificate", security{tls: trusting("ca.pem")},
				remoteAlert("certificate required")},
			{"with a client certificate of another CA",
				security{tls: insisting("ca.pem", "other-client")},
				remoteAlert("unknown certificate authority")},
		}
	case "sasl-plain":
		return security{mechanism: plainAs("alice-secret")}, []refusal{{
			"a wrong password", security{mechanism: plainAs("wrong")},
			authenticationFailed("Invalid username or password"),
		}}
	case "sasl-ssl-scram":
		return security{tls: trusting("ca.pem"), mechanism: scramAs("alice-secret")}, []refusal{{
			"a wrong password", security{tls: trusting("ca.pem"), mechanism: scramAs("wrong")},
			authenticationFailed("invalid credentials"),
		}}
	case "oauthbearer":
		key := readKey(file("rs256.pem"))
		bearer := func(lifetime time.Duration) sasl.Mechanism {
			return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
				return oauth.Auth{Token: token(key, lifetime)}, nil
			})
		}
		return security{mechanism: bearer(10 * time.Minute)}, []refusal{{
			"an expired token", security{mechanism: bearer(-2 * time.Minute)},
			authenticationFailed("the token has expired"),
		}}
	}
	fail("unknown security %s", name)
	return security{}, nil
}

func roundTrip(bootstrap string, s security, topic, label string) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	producer, err := kgo.NewClient(append(s.options(bootstrap),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err != nil {
		fail("%s: %v", topic, err)
	}
	defer producer.Close()
	created, err := kadm.NewClient(producer).CreateTopic(ctx, 1, 1, nil, topic)
	if err == nil {
		err = created.Err
	}
	if err != nil {
		fail("%s: creating it: %v", topic, err)
	}
	sent := make([]*kgo.Record, records)
	for index := range sent {
		sent[index] = &kgo.Record{
			Topic:     topic,
			Partition: 0,
			Key:       fmt.Appendf(nil, "key-%d", index),
			Value:     fmt.Appendf(nil, "%s %d", topic, index),
		}
	}
	if err := producer.ProduceSync(ctx, sent...).FirstErr(); err != nil {
		fail("%s: producing: %v", topic, err)
	}

	consumer, err := kgo.NewClient(append(s.options(bootstrap),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			topic: {0: kgo.NewOffset().AtStart()},
		}))...)
	if err != nil {
		fail("%s: %v", topic, err)
	}
	defer consumer.Close()
	var read []*kgo.Record
	for len(read) < records {
		fetches := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			fail("%s: %d of %d records read within %v", topic, len(read), records, timeout)
		}
		for _, fetchError := range fetches.Errors() {
			fail("%s: fetching: %v", topic, fetchError.Err)
		}
		read = append(read, fetches.Records()...)
	}
	if len(read) != records {
		fail("%s: %d records read, %d produced", topic, len(read), records)
	}
	for index, record := range read {
		want := sent[index]
		if record.Partition != 0 || record.Offset != int64(index) ||
			string(record.Key) != string(want.Key) || string(record.Value) != string(want.Value) {
			fail("%s: record %d read as %d/%d %q %q", topic, index,
				record.Partition, record.Offset, record.Key, record.Value)
		}
	}
	say("%d records produced and read back, %s", records, label)
}

// refused fails unless a client of r.security is refused metadata with
// the error r expects.
func refused(bootstrap, name string, r refusal) {
	client, err := kgo.NewClient(append(r.security.options(bootstrap),
		kgo.RetryTimeout(5*time.Second))...)
	if err != nil {
		fail("%v", err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), refusalTimeout)
	defer cancel()
	_, err = kadm.NewClient(client).ListTopics(ctx)
	label := name + ", " + r.label
	if err == nil {
		fail("%s: got metadata", label)
	}
	if !r.expected.matches(err) {
		fail("%s: refused, but not with %s: %v (%T)", label, r.expected.text, err, err)
	}
	say("%s: refused (%v)", label, err)
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "keygen" {
		keygen(os.Args[2])
		return
	}
	if len(os.Args) != 5 {
		fail("usage: franz-go-secured SECURITY BOOTSTRAP DIR TOPIC")
	}
	name, bootstrap, dir, topic := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	good, refusals := settings(name, dir)
	roundTrip(bootstrap, good, topic+"-1", name)
	for _, r := range refusals {
		refused(bootstrap, name, r)
	}
	roundTrip(bootstrap, good, topic+"-2", name+", after the refusals")
}
