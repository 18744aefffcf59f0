// Package bundle is how a vendor's plugin travels: one file holding
// plugin.toml, the wasm module and metadata, with a sha256 content digest
// and ed25519 signatures over it. It verifies a bundle against runtime.toml's
// [trust] (vendor keys, expiry, revocation, capability ceilings) before the
// host loads it, and pulls bundles from OCI registries pinned by digest.
package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// The file format, version 1. Every record is a name, a space, the decimal
// length of its body, a newline, the body and a newline:
//
//	airlock-bundle 1\n
//	meta <n>\n<JSON Meta>\n
//	plugin.toml <n>\n<manifest>\n
//	module.wasm <n>\n<module>\n
//	digest 71\nsha256:<hex of sha256 over every byte above>\n
//	signature <n>\n<JSON Signature>\n          (zero or more)
//
// The content is the header and the three content records; its encoding is
// unique (fixed order, no optional records, lengths without leading zeros),
// so the digest names the content. Signatures sign the digest, so adding
// one leaves the digest as it was. See host/RATIONALE.md, "Vendor bundles".
const (
	header     = "airlock-bundle 1\n"
	Extension  = ".airlock"
	MediaType  = "application/vnd.airlock.bundle.v1"
	maxMeta    = 4 << 10
	maxToml    = 256 << 10
	maxModule  = 64 << 20
	maxSig     = 1 << 10
	maxSigs    = 16
	digestLen  = len("sha256:") + 64
	ABIVersion = 1
)

// MaxSize bounds a whole bundle file, for readers of untrusted input.
const MaxSize = len(header) + 3*32 + maxMeta + maxToml + maxModule + 32 + digestLen + maxSigs*(maxSig+32)

// Meta is the bundle's metadata record.
type Meta struct {
	Name    string `json:"name"`    // the manifest's name
	Version string `json:"version"` // the manifest's version
	Vendor  string `json:"vendor"`  // who made it; must match the signer's [[trust.vendor]] name
	Created string `json:"created"` // RFC 3339, UTC
	ABI     int    `json:"abi"`     // the airlock ABI version of the module
}

// Signature is one signature record: an ed25519 signature by Key over
// SignedMessage(digest).
type Signature struct {
	Key string `json:"key"` // base64 public key, as in vendor.pub
	Sig string `json:"sig"` // base64 signature
}

// Bundle is a decoded bundle. Its Digest has been checked against the
// content; its signatures have not (see Verify).
type Bundle struct {
	Meta       Meta
	Manifest   []byte // plugin.toml
	Module     []byte // the wasm module
	Digest     string // "sha256:<hex>"
	Signatures []Signature
	metaRaw    []byte
}

// ErrFormat is wrapped by every error about a malformed bundle file.
var ErrFormat = errors.New("not a valid airlock bundle")

// ErrDigest is wrapped when the content does not match the recorded digest.
var ErrDigest = errors.New("bundle content does not match its digest")

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, args...)...)
}

// encodeContent encodes the digested part.
func encodeContent(metaRaw, manifest, module []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(header) + len(metaRaw) + len(manifest) + len(module) + 64)
	b.WriteString(header)
	record(&b, "meta", metaRaw)
	record(&b, "plugin.toml", manifest)
	record(&b, "module.wasm", module)
	return b.Bytes()
}

func record(b *bytes.Buffer, name string, body []byte) {
	b.WriteString(name + " " + strconv.Itoa(len(body)) + "\n")
	b.Write(body)
	b.WriteByte('\n')
}

func digestOf(content []byte) string {
	sum := sha256.Sum256(content)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// New makes a bundle from its parts and computes its digest.
func New(meta Meta, manifest, module []byte) (*Bundle, error) {
	raw, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	switch {
	case len(raw) > maxMeta:
		return nil, fmt.Errorf("metadata is %d bytes, above %d", len(raw), maxMeta)
	case len(manifest) > maxToml:
		return nil, fmt.Errorf("plugin.toml is %d bytes, above %d", len(manifest), maxToml)
	case len(module) > maxModule:
		return nil, fmt.Errorf("the module is %d bytes, above %d", len(module), maxModule)
	}
	return &Bundle{Meta: meta, Manifest: manifest, Module: module, metaRaw: raw, Digest: digestOf(encodeContent(raw, manifest, module))}, nil
}

// Encode returns the bundle file's bytes.
func (b *Bundle) Encode() []byte {
	var out bytes.Buffer
	out.Write(encodeContent(b.metaRaw, b.Manifest, b.Module))
	record(&out, "digest", []byte(b.Digest))
	for _, s := range b.Signatures {
		raw, _ := json.Marshal(s)
		record(&out, "signature", raw)
	}
	return out.Bytes()
}

// ReadFile reads and decodes the bundle file at path.
func ReadFile(path string) (*Bundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > int64(MaxSize) {
		return nil, fmt.Errorf("%s: %w: %d bytes, above the %d a bundle may have", path, ErrFormat, st.Size(), MaxSize)
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, err
	}
	b, err := Open(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// Open decodes a bundle file and checks its digest. It is strict: a record
// out of place, a length with a leading zero, a body above its bound,
// unknown metadata or trailing bytes are errors, so that one content has
// one encoding. It never trusts a length before checking it.
func Open(data []byte) (*Bundle, error) {
	if len(data) > MaxSize {
		return nil, formatErr("%d bytes, above the %d a bundle may have", len(data), MaxSize)
	}
	if !bytes.HasPrefix(data, []byte(header)) {
		if bytes.HasPrefix(data, []byte("airlock-bundle ")) {
			return nil, formatErr("unsupported version %q (a newer airlock made it?)", firstLine(data))
		}
		return nil, formatErr("it does not start with %q", header[:len(header)-1])
	}
	r := reader{data: data, off: len(header)}
	metaRaw, err := r.record("meta", maxMeta)
	if err != nil {
		return nil, err
	}
	manifest, err := r.record("plugin.toml", maxToml)
	if err != nil {
		return nil, err
	}
	module, err := r.record("module.wasm", maxModule)
	if err != nil {
		return nil, err
	}
	contentEnd := r.off
	digest, err := r.record("digest", digestLen)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Manifest: manifest, Module: module, metaRaw: metaRaw, Digest: string(digest)}
	for r.off < len(data) {
		if len(b.Signatures) == maxSigs {
			return nil, formatErr("more than %d signatures", maxSigs)
		}
		raw, err := r.record("signature", maxSig)
		if err != nil {
			return nil, err
		}
		var s Signature
		if err := strictJSON(raw, &s); err != nil {
			return nil, formatErr("signature %d: %v", len(b.Signatures)+1, err)
		}
		if canon, _ := json.Marshal(s); !bytes.Equal(canon, raw) {
			return nil, formatErr("signature %d is not in canonical form", len(b.Signatures)+1)
		}
		b.Signatures = append(b.Signatures, s)
	}
	if got := digestOf(data[:contentEnd]); got != b.Digest {
		return nil, fmt.Errorf("%w: it records %s but its content hashes to %s (the file was changed after packing; get it again from the vendor)", ErrDigest, b.Digest, got)
	}
	if err := strictJSON(metaRaw, &b.Meta); err != nil {
		return nil, formatErr("meta: %v", err)
	}
	if canon, _ := json.Marshal(b.Meta); !bytes.Equal(canon, metaRaw) {
		return nil, formatErr("meta is not in canonical form")
	}
	return b, nil
}

func strictJSON(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return nil
}

func firstLine(data []byte) string {
	if i := bytes.IndexByte(data, '\n'); i >= 0 && i < 64 {
		return string(data[:i])
	}
	return string(data[:min(len(data), 64)])
}

type reader struct {
	data []byte
	off  int
}

// record reads "name <len>\n<body>\n" with len at most limit.
func (r *reader) record(name string, limit int) ([]byte, error) {
	rest := r.data[r.off:]
	prefix := name + " "
	if !bytes.HasPrefix(rest, []byte(prefix)) {
		return nil, formatErr("at byte %d: expected the %q record", r.off, name)
	}
	rest = rest[len(prefix):]
	nl := bytes.IndexByte(rest[:min(len(rest), 12)], '\n')
	if nl < 1 {
		return nil, formatErr("%s: bad length line", name)
	}
	digits := string(rest[:nl])
	if len(digits) > 1 && digits[0] == '0' {
		return nil, formatErr("%s: length %q has a leading zero", name, digits)
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || digits[0] == '+' || digits[0] == '-' {
		return nil, formatErr("%s: bad length %q", name, digits)
	}
	if n > limit {
		return nil, formatErr("%s: %d bytes, above the %d allowed", name, n, limit)
	}
	rest = rest[nl+1:]
	if len(rest) < n+1 || rest[n] != '\n' {
		return nil, formatErr("%s: truncated", name)
	}
	r.off += len(prefix) + nl + 1 + n + 1
	return rest[:n], nil
}
