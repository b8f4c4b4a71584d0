// Package registrytest runs a real OCI registry in the test's process (go-containerregistry's
// pkg/registry, the distribution API over HTTP on a loopback port) and pushes images to it, so
// that the driver resolves tags to digests as it does against ghcr.io: a HEAD of the manifest.
//
// Images are pushed under the repository path of the reference they stand for: the registry is
// the mirror (images.EnvMirror) of every registry the tests name, ghcr.io's among them.
package registrytest

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/clawdeploy/clawdeploy/images"
)

// Registry is a registry of the test's.
type Registry struct {
	// Host is its host:port on the loopback: the mirror to resolve through.
	Host string

	mu     sync.Mutex
	heads  int
	pushes map[string]int
	server *httptest.Server
}

// Start runs a registry until the test ends and pushes an image for each of refs.
func Start(t testing.TB, refs ...string) *Registry {
	t.Helper()
	r, err := Serve(refs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// Serve runs a registry until Close, with an image for each of refs: for a TestMain, whose
// processes all resolve through it (images.EnvMirror in the environment).
func Serve(refs ...string) (*Registry, error) {
	r := &Registry{}
	handler := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.server = httptest.NewServer(countHeads(handler, r))
	r.Host = strings.TrimPrefix(r.server.URL, "http://")
	for _, ref := range refs {
		if _, err := r.push(ref); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

// Close stops the registry.
func (r *Registry) Close() { r.server.Close() }

// Resolver resolves through this registry, as the driver does with EnvMirror set to Host.
func (r *Registry) Resolver() images.Registry { return images.Registry{Mirror: r.Host} }

// Env is the environment entry that makes a driver resolve through this registry.
func (r *Registry) Env() (key, value string) { return images.EnvMirror, r.Host }

// Push pushes an image (an index of two platforms' images, as OpenClaw's releases are) under
// ref's repository and tag, and returns its digest. Pushing a tag again moves it to a new image.
// The images are made from the reference and the count of its pushes alone, so two registries
// of two tests serve the same digest for the same tag.
func (r *Registry) Push(t testing.TB, ref string) string {
	t.Helper()
	digest, err := r.push(ref)
	if err != nil {
		t.Fatal(err)
	}
	return digest
}

func (r *Registry) push(ref string) (string, error) {
	parsed, err := name.NewTag(images.Unpinned(ref))
	if err != nil {
		return "", fmt.Errorf("registrytest: %s: %w", ref, err)
	}
	r.mu.Lock()
	if r.pushes == nil {
		r.pushes = map[string]int{}
	}
	r.pushes[parsed.String()]++
	n := r.pushes[parsed.String()]
	r.mu.Unlock()
	idx := v1.ImageIndex(empty.Index)
	for _, arch := range []string{"amd64", "arm64"} {
		layer := static.NewLayer([]byte(fmt.Sprintf("%s #%d for %s", parsed, n, arch)), types.OCILayer)
		img, err := mutate.AppendLayers(empty.Image, layer)
		if err != nil {
			return "", err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	at, err := name.NewTag(r.Host + "/" + parsed.RepositoryStr() + ":" + parsed.TagStr())
	if err != nil {
		return "", err
	}
	if err := remote.WriteIndex(at, idx); err != nil {
		return "", fmt.Errorf("registrytest: pushing %s: %w", at, err)
	}
	digest, err := idx.Digest()
	if err != nil {
		return "", err
	}
	return digest.String(), nil
}

// Heads is how many manifest HEADs the registry answered: how often a tag was resolved.
func (r *Registry) Heads() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.heads
}

// countHeads counts the manifest HEADs h answers.
func countHeads(h http.Handler, r *Registry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodHead && strings.Contains(req.URL.Path, "/manifests/") {
			r.mu.Lock()
			r.heads++
			r.mu.Unlock()
		}
		h.ServeHTTP(w, req)
	})
}
