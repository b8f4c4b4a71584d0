// Package images pins the gateway's container image to a digest.
//
// A tag moves: OpenClaw moves `latest` at each stable release and rebuilds its images, so a host
// that pulls a tag at each start upgrades OpenClaw, and migrates its data, whenever the tag moved
// since the last pull. A digest names one image for good. The driver resolves openclaw_image
// through the registry once, at `up`, and records the pinned reference (repository:tag@sha256:…)
// in the stack's configuration (openclaw_image_pinned) and in the journal; every host the program
// makes from then on (a heal, a replaced instance, a restart) runs that digest, until an `up`
// deploys another image or follows the tag on purpose (--refresh-image).
package images

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// EnvMirror names a registry that serves the same repositories as the ones images name (a pull
// through cache, or a test's registry): host[:port][/path]. Digests are resolved there instead;
// the host still pulls from the image's own registry, by the same digest, as a digest names the
// content wherever it is served.
const EnvMirror = "CLAWDEPLOY_REGISTRY_MIRROR"

// Digest is ref's digest (sha256:…), or "" when ref names its image by tag alone.
func Digest(ref string) string {
	_, digest, _ := strings.Cut(ref, "@")
	return digest
}

// Unpinned is ref without its digest: the repository and tag it was resolved from.
func Unpinned(ref string) string {
	unpinned, _, _ := strings.Cut(ref, "@")
	return unpinned
}

// Pin is ref pinned to digest: repository:tag@digest, which docker pulls by the digest alone (the
// tag stays for whoever reads it).
func Pin(ref, digest string) string { return Unpinned(ref) + "@" + digest }

// Effective is the image a host runs for openclaw_image image: pinned when it was pinned from
// image (a pin of another image is stale: the image changed since), else image as it is.
func Effective(image, pinned string) string {
	if Digest(image) == "" && pinned != "" && Digest(pinned) != "" && Unpinned(pinned) == image {
		return pinned
	}
	return image
}

// Resolver resolves an image reference to the digest its registry serves for it now.
type Resolver interface {
	Resolve(ctx context.Context, ref string) (digest string, err error)
}

// Registry resolves through the registry API: a HEAD of the manifest (an index, for an image
// built for several platforms: its digest is the one every platform pulls by), with the
// credentials of the standard Docker config when it has some and the anonymous token flow of a
// public registry otherwise.
type Registry struct {
	// Mirror, when set, is where references are resolved instead (EnvMirror).
	Mirror string
}

// Resolve implements Resolver.
func (r Registry) Resolve(ctx context.Context, ref string) (string, error) {
	at := ref
	if r.Mirror != "" {
		parsed, err := name.ParseReference(ref)
		if err != nil {
			return "", fmt.Errorf("%s is not an image reference: %w", ref, err)
		}
		at = strings.TrimSuffix(r.Mirror, "/") + "/" + parsed.Context().RepositoryStr() + refSuffix(parsed)
	}
	parsed, err := name.ParseReference(at)
	if err != nil {
		return "", fmt.Errorf("%s is not an image reference: %w", at, err)
	}
	desc, err := remote.Head(parsed, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		where := ""
		if at != ref {
			where = " (through " + at + ")"
		}
		return "", fmt.Errorf("resolving %s to a digest%s: %w", ref, where, err)
	}
	return desc.Digest.String(), nil
}

// refSuffix is :tag or @digest, as parsed names it.
func refSuffix(parsed name.Reference) string {
	if _, ok := parsed.(name.Digest); ok {
		return "@" + parsed.Identifier()
	}
	return ":" + parsed.Identifier()
}
