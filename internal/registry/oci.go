package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/bundle"
)

// An airlock bundle in an OCI registry is an artifact (image-spec v1.1):
// a manifest with this artifactType, the empty config, and one layer, the
// bundle file, whose annotation AnnotationDigest repeats the bundle's
// content digest.
const (
	ArtifactType     = "application/vnd.airlock.bundle.v1"
	LayerMediaType   = "application/vnd.airlock.bundle.v1+airlock"
	AnnotationDigest = "vnd.airlock.bundle.digest"
	maxOCIManifest   = 64 << 10
)

// repository opens ref's repository with a's credentials. Plain HTTP is
// used for a registry on loopback, where TLS protects nothing (tests, a
// local mirror), and for those a says; never otherwise.
func repository(ref string, a Access) (*remote.Repository, registry.Reference, error) {
	r, err := registry.ParseReference(ref)
	if err != nil {
		return nil, r, fmt.Errorf("bad reference %q: %w (write registry/repository@sha256:<digest>)", ref, err)
	}
	repo, err := remote.NewRepository(r.Registry + "/" + r.Repository)
	if err != nil {
		return nil, r, err
	}
	repo.PlainHTTP = a.plainHTTP(r.Host())
	repo.Client = a.client()
	repo.ManifestMediaTypes = []string{ocispec.MediaTypeImageManifest}
	return repo, r, nil
}

func loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Pulled is the result of a pull.
type Pulled struct {
	Ref    string // pinned: registry/repository@sha256:<manifest digest>
	Path   string // the cached bundle file
	Bundle *bundle.Bundle
}

// Pull fetches the bundle at ref into the cache of rt's state_dir and
// returns it. A ref pinned by digest is fetched by that digest and every
// byte is checked against it; a tag is resolved first, and the pinned ref
// to write into [[bundle]] is returned. The bundle's format and content
// digest are checked before it is cached; its signatures and ceiling are
// checked by Load, at every load.
func Pull(ctx context.Context, rt *manifest.Runtime, ref string, a Access) (*Pulled, error) {
	repo, r, err := repository(ref, a)
	if err != nil {
		return nil, err
	}
	var desc ocispec.Descriptor
	if _, derr := r.Digest(); derr == nil {
		desc, err = repo.Resolve(ctx, r.Reference)
	} else {
		desc, err = repo.Resolve(ctx, r.ReferenceOrDefault())
	}
	if err != nil {
		return nil, a.explain("pull "+ref, r.Registry, err)
	}
	if d, derr := r.Digest(); derr == nil && desc.Digest != d {
		return nil, fmt.Errorf("pull %s: the registry answered with manifest %s", ref, desc.Digest)
	}
	if desc.Size > maxOCIManifest {
		return nil, fmt.Errorf("pull %s: manifest of %d bytes is too large for an airlock bundle", ref, desc.Size)
	}
	raw, err := content.FetchAll(ctx, repo, desc)
	if err != nil {
		return nil, a.explain("pull "+ref+": manifest", r.Registry, err)
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		return nil, fmt.Errorf("pull %s: manifest: %w", ref, err)
	}
	if man.ArtifactType != ArtifactType {
		return nil, fmt.Errorf("pull %s: artifact type %q is not an airlock bundle (%s)", ref, man.ArtifactType, ArtifactType)
	}
	if len(man.Layers) != 1 || man.Layers[0].MediaType != LayerMediaType {
		return nil, fmt.Errorf("pull %s: an airlock bundle artifact has exactly one layer of type %s", ref, LayerMediaType)
	}
	layer := man.Layers[0]
	if layer.Size > int64(bundle.MaxSize) {
		return nil, fmt.Errorf("pull %s: layer of %d bytes is above the %d a bundle may have", ref, layer.Size, bundle.MaxSize)
	}
	data, err := content.FetchAll(ctx, repo, layer)
	if err != nil {
		return nil, a.explain("pull "+ref+": bundle", r.Registry, err)
	}
	b, err := bundle.Open(data)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	if a := layer.Annotations[AnnotationDigest]; a != "" && a != b.Digest {
		return nil, fmt.Errorf("pull %s: %w: the artifact says %s, the bundle is %s", ref, bundle.ErrDigest, a, b.Digest)
	}
	pinned := r.Registry + "/" + r.Repository + "@" + desc.Digest.String()
	path, err := bundle.StoreCached(rt, pinned, data)
	if err != nil {
		return nil, err
	}
	return &Pulled{Ref: pinned, Path: path, Bundle: b}, nil
}

// Push uploads a bundle file to ref (a tag) as an OCI artifact and returns
// the pinned reference to write into [[bundle]].
func Push(ctx context.Context, data []byte, ref string, a Access) (string, error) {
	b, err := bundle.Open(data)
	if err != nil {
		return "", err
	}
	repo, r, err := repository(ref, a)
	if err != nil {
		return "", err
	}
	if err := r.ValidateReferenceAsTag(); err != nil {
		return "", fmt.Errorf("push to a tag, such as %s/%s:%s", r.Registry, r.Repository, b.Meta.Version)
	}
	layer := content.NewDescriptorFromBytes(LayerMediaType, data)
	layer.Annotations = map[string]string{
		AnnotationDigest:            b.Digest,
		ocispec.AnnotationTitle:     b.Meta.Name + bundle.Extension,
		ocispec.AnnotationVersion:   b.Meta.Version,
		ocispec.AnnotationVendor:    b.Meta.Vendor,
		ocispec.AnnotationCreated:   b.Meta.Created,
		ocispec.AnnotationRefName:   r.Reference,
		"vnd.airlock.abi.version":   fmt.Sprint(b.Meta.ABI),
		"vnd.airlock.bundle.signed": fmt.Sprint(len(b.Signatures) > 0),
	}
	if err := repo.Push(ctx, layer, bytes.NewReader(data)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		return "", a.explain("push "+ref, r.Registry, err)
	}
	desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, ArtifactType, oras.PackManifestOptions{
		Layers:              []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: b.Meta.Created},
	})
	if err != nil {
		return "", a.explain("push "+ref, r.Registry, err)
	}
	if err := repo.Tag(ctx, desc, r.Reference); err != nil {
		return "", a.explain("push "+ref+": tag", r.Registry, err)
	}
	return r.Registry + "/" + r.Repository + "@" + desc.Digest.String(), nil
}

// Fetch pulls ref into the cache of rt's state_dir with rt's own access
// ([registry] auth and plain_http, read afresh at each call): the host's
// pull of a [[bundle]] (host.Options.Pull).
func Fetch(ctx context.Context, rt *manifest.Runtime, ref string) error {
	a, err := RuntimeAccess(rt)
	if err != nil {
		return err
	}
	_, err = Pull(ctx, rt, ref, a)
	return err
}
