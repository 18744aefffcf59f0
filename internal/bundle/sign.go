package bundle

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/airlockhq/airlock/host/manifest"
)

// signingContext separates airlock bundle signatures from any other use
// of the same key: the signed message is this, then the digest's text.
const signingContext = "airlock bundle signature v1\n"

// SignedMessage is what a signature over digest signs.
func SignedMessage(digest string) []byte { return []byte(signingContext + digest) }

// Keygen writes a new key pair: base+".key" (the private key, mode 0600)
// and base+".pub" (the public key, base64, what runtime.toml's
// [[trust.vendor]] key holds). It refuses to overwrite either: the .pub may
// be one that operators already trust. It leaves no .key without its .pub.
func Keygen(base string) (pub string, err error) {
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	pub = base64.StdEncoding.EncodeToString(pk)
	keyText := "airlock-ed25519-private-key " + base64.StdEncoding.EncodeToString(sk.Seed()) + "\n"
	if err := createKeyFile(base+".key", keyText, 0o600); err != nil {
		return "", err
	}
	if err := createKeyFile(base+".pub", pub+"\n", 0o644); err != nil {
		os.Remove(base + ".key")
		return "", err
	}
	return pub, nil
}

// createKeyFile writes text to a new file at path, refusing one that exists
// (O_EXCL, so that no check races the create), and removes what it made if
// the write fails.
func createKeyFile(path, text string, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists (choose another name with -o, or remove the old key pair if you mean to replace it)", path)
	}
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	if err = errors.Join(err, f.Close()); err != nil {
		os.Remove(path)
	}
	return err
}

// ReadPrivateKey reads a key written by Keygen. It refuses a key file that
// others can read.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "airlock-ed25519-private-key ")
	seed, err := base64.StdEncoding.DecodeString(text)
	if !ok || err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s is not an airlock private key (make one with airlock keygen)", path)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// Sign adds a signature by sk over the bundle's digest, replacing an
// earlier one by the same key.
func (b *Bundle) Sign(sk ed25519.PrivateKey) {
	pub := base64.StdEncoding.EncodeToString(sk.Public().(ed25519.PublicKey))
	s := Signature{Key: pub, Sig: base64.StdEncoding.EncodeToString(ed25519.Sign(sk, SignedMessage(b.Digest)))}
	for i, old := range b.Signatures {
		if old.Key == pub {
			b.Signatures[i] = s
			return
		}
	}
	b.Signatures = append(b.Signatures, s)
}

// Signer is who vouches for a verified bundle.
type Signer struct {
	// Vendor is the trusted vendor whose key signed it; nil for an
	// unsigned plugin admitted by allow_unsigned.
	Vendor *manifest.Vendor
	// Note says why an unsigned plugin was admitted, or what was wrong
	// with a signature that developer mode let through.
	Note string
}

// Errors that Verify wraps, so that callers and tests can tell them apart.
var (
	ErrUnsigned  = errors.New("no signature by a trusted vendor")
	ErrSignature = errors.New("bad signature")
	ErrExpired   = errors.New("vendor key expired")
	ErrRevoked   = errors.New("revoked")
)

// Verify decides whether b may load under t. The digest was checked by
// Open. A revoked bundle is refused everywhere. Otherwise the first
// signature by a trusted, unexpired, unrevoked vendor key that verifies
// admits it, with that vendor's ceiling; a bundle with none is refused
// unless unsignedOK (its file lies in an allow_unsigned directory).
func Verify(b *Bundle, t *manifest.Trust, now time.Time, unsignedOK bool) (Signer, error) {
	if t.DigestRevoked(b.Digest) {
		return Signer{}, fmt.Errorf("bundle %s is %w in [trust] revoked", b.Digest, ErrRevoked)
	}
	var problems []error
	for _, s := range b.Signatures {
		key, err := base64.StdEncoding.DecodeString(s.Key)
		if err != nil || len(key) != ed25519.PublicKeySize {
			problems = append(problems, fmt.Errorf("%w: a signature's key is not an ed25519 public key", ErrSignature))
			continue
		}
		v := vendorFor(t, key)
		if v == nil {
			problems = append(problems, fmt.Errorf("%w: signed by key %s, which no [[trust.vendor]] names", ErrUnsigned, KeyID(key)))
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil || !ed25519.Verify(key, SignedMessage(b.Digest), sig) {
			problems = append(problems, fmt.Errorf("%w: the signature by vendor %q does not match the bundle (changed after signing, or signed with another key)", ErrSignature, v.Name))
			continue
		}
		if t.KeyRevoked(key) {
			problems = append(problems, fmt.Errorf("vendor %q key %s is %w in [trust] revoked", v.Name, KeyID(key), ErrRevoked))
			continue
		}
		if !v.NotAfter.IsZero() && now.After(v.NotAfter) {
			problems = append(problems, fmt.Errorf("%w: vendor %q's key is trusted until %s (renew not_after in [[trust.vendor]], or get a bundle signed with the vendor's new key)", ErrExpired, v.Name, v.NotAfter.UTC().Format(time.RFC3339)))
			continue
		}
		if b.Meta.Vendor != "" && b.Meta.Vendor != v.Name {
			problems = append(problems, fmt.Errorf("%w: the bundle says vendor %q but is signed by %q's key", ErrSignature, b.Meta.Vendor, v.Name))
			continue
		}
		return Signer{Vendor: v}, nil
	}
	if len(b.Signatures) == 0 {
		problems = append(problems, fmt.Errorf("%w: the bundle is unsigned (sign it with airlock sign)", ErrUnsigned))
	}
	err := errors.Join(problems...)
	if unsignedOK {
		return Signer{Note: "allowed by [trust] allow_unsigned: " + strings.ReplaceAll(err.Error(), "\n", "; ")}, nil
	}
	return Signer{}, err
}

func vendorFor(t *manifest.Trust, key ed25519.PublicKey) *manifest.Vendor {
	for i := range t.Vendors {
		if t.Vendors[i].Key.Equal(key) {
			return &t.Vendors[i]
		}
	}
	return nil
}

// KeyID is a short, stable name for a public key in messages: the first
// 8 bytes of its base64 form are too easy to confuse, so it is the key's
// base64 cut to 12 characters followed by "…".
func KeyID(key []byte) string {
	s := base64.StdEncoding.EncodeToString(key)
	return s[:min(len(s), 12)] + "…"
}
