package images_test

import (
	"context"
	"strings"
	"testing"

	"github.com/clawdeploy/clawdeploy/images"
	"github.com/clawdeploy/clawdeploy/internal/registrytest"
)

const tag = "ghcr.io/openclaw/openclaw:2026.9.6"

// TestResolveFollowsTheRegistry resolves a tag through a real registry's API: the digest is the
// one pushed (an index of two platforms), a moved tag resolves to the new one, and an unknown tag
// is an error that names it.
func TestResolveFollowsTheRegistry(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t)
	first := reg.Push(t, tag)
	ctx := context.Background()
	got, err := reg.Resolver().Resolve(ctx, tag)
	if err != nil || got != first {
		t.Fatalf("Resolve(%s) = %q, %v; pushed %s", tag, got, err, first)
	}
	moved := reg.Push(t, tag)
	if got, err := reg.Resolver().Resolve(ctx, tag); err != nil || got != moved || moved == first {
		t.Errorf("after the tag moved: %q, %v; pushed %s (first %s)", got, err, moved, first)
	}
	// A pinned reference resolves to its own digest, as the registry serves it.
	if got, err := reg.Resolver().Resolve(ctx, images.Pin(tag, first)); err != nil || got != first {
		t.Errorf("Resolve of the pinned first image: %q, %v", got, err)
	}
	_, err = reg.Resolver().Resolve(ctx, "ghcr.io/openclaw/openclaw:2099.1.1")
	if err == nil || !strings.Contains(err.Error(), "ghcr.io/openclaw/openclaw:2099.1.1") || !strings.Contains(err.Error(), reg.Host) {
		t.Errorf("an unknown tag: %v", err)
	}
	// A mirror with a path: the repository goes under it.
	if _, err := (images.Registry{Mirror: reg.Host + "/cache"}).Resolve(ctx, tag); err == nil || !strings.Contains(err.Error(), reg.Host+"/cache/openclaw/openclaw:2026.9.6") {
		t.Errorf("through a mirror path: %v", err)
	}
}

func TestEffective(t *testing.T) {
	t.Parallel()
	d1 := "sha256:" + strings.Repeat("1", 64)
	d2 := "sha256:" + strings.Repeat("2", 64)
	for _, c := range []struct{ image, pinned, want string }{
		{tag, "", tag},
		{tag, images.Pin(tag, d1), tag + "@" + d1},
		// A pin of another image is stale: the image changed since.
		{tag, images.Pin("ghcr.io/openclaw/openclaw:2026.8.2", d1), tag},
		// An image given by digest needs no pin, and keeps its own.
		{tag + "@" + d2, images.Pin(tag, d1), tag + "@" + d2},
		{"127.0.0.1:5000/openclaw:1", images.Pin("127.0.0.1:5000/openclaw:1", d1), "127.0.0.1:5000/openclaw:1@" + d1},
	} {
		if got := images.Effective(c.image, c.pinned); got != c.want {
			t.Errorf("Effective(%q, %q) = %q, want %q", c.image, c.pinned, got, c.want)
		}
	}
	if images.Digest(tag) != "" || images.Digest(tag+"@"+d1) != d1 || images.Unpinned(tag+"@"+d1) != tag {
		t.Error("Digest or Unpinned")
	}
}
