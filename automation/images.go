package automation

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/clawdeploy/clawdeploy/images"
	"github.com/clawdeploy/clawdeploy/preview"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
)

// imagePin is what an up or a preview deploys of the gateway's image.
type imagePin struct {
	// Image is openclaw_image as configured (or the default).
	Image string
	// Recorded is the stack's pin ("" when it has none, or one of another image).
	Recorded string
	// Pinned is the pinned reference this operation deploys.
	Pinned string
	// Latest is what the tag resolves to now, when it was asked ("" otherwise).
	Latest string
	// Rollback says Pinned is --rollback's: the last good image, by its digest.
	Rollback bool
}

// pinImage decides which digest of openclaw_image an operation deploys, given the stack's
// configuration with the operation's input over it. An image given by digest is deployed as
// it is. A tag the stack pinned already keeps its pin: an up never asks the registry then (a
// heal or an up of another setting does not follow a moved tag), and a preview asks only to
// say whether the tag moved. A tag not pinned yet, or refresh (--refresh-image), is resolved
// through the registry now. forced is a pin to deploy instead (--rollback's). Nil for a
// program without openclaw_image.
func (d *Driver) pinImage(ctx context.Context, config auto.ConfigMap, refresh, forPreview bool, forced string) (*imagePin, error) {
	if !d.profile.own || !slices.Contains(d.profile.Keys().Program, stackconfig.KeyOpenClawImage) {
		return nil, nil
	}
	pin := &imagePin{Image: configImage(config)}
	if v := config[stackconfig.KeyOpenClawImagePinned].Value; images.Effective(pin.Image, v) != pin.Image {
		pin.Recorded = v
	}
	switch {
	case images.Digest(pin.Image) != "":
		pin.Pinned = pin.Image
		return pin, nil
	case forced != "" && images.Unpinned(forced) == pin.Image:
		pin.Pinned, pin.Rollback = forced, true
		return pin, nil
	case pin.Recorded != "" && !refresh && !forPreview:
		pin.Pinned = pin.Recorded
		return pin, nil
	}
	digest, err := d.registry.Resolve(ctx, pin.Image)
	switch {
	case err != nil && forPreview && pin.Recorded != "" && !refresh:
		pin.Pinned = pin.Recorded
		return pin, fmt.Errorf("whether %s moved is unknown: %w", pin.Image, err)
	case err != nil:
		return nil, resolveError(pin.Image, err)
	}
	pin.Latest = images.Pin(pin.Image, digest)
	pin.Pinned = pin.Latest
	if pin.Recorded != "" && !refresh {
		pin.Pinned = pin.Recorded
	}
	return pin, nil
}

// configImage is openclaw_image in config, or the default.
func configImage(config auto.ConfigMap) string {
	if v, ok := config[fullKey(stackconfig.KeyOpenClawImage)]; ok && v.Value != "" {
		return v.Value
	}
	return stackconfig.DefaultOpenClawImage
}

// resolveError says why openclaw_image could not be pinned, and what to do: a tag the registry
// does not have is the input's fault (nothing was written, exit 2); a registry that does not
// answer is not.
func resolveError(image string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusNotFound || terr.StatusCode == http.StatusUnauthorized) {
		return &ConfigError{Err: fmt.Errorf("config %s: %s is not an image the registry serves (%v); "+
			"allowed: a tag or digest of an image it has, like %s", stackconfig.KeyOpenClawImage, image, err, stackconfig.DefaultOpenClawImage)}
	}
	return fmt.Errorf("%w; nothing was changed: try again when the registry answers, or give %s by digest "+
		"(repository:tag@sha256:…), which needs no registry", err, stackconfig.KeyOpenClawImage)
}

// noteImage says what an up does with the image: the pin it records, or the tag it follows.
func (d *Driver) noteImage(stack string, pin *imagePin) {
	switch {
	case pin == nil || pin.Pinned == pin.Recorded || pin.Rollback:
		return // nothing new, or --rollback, which says what it deploys
	case pin.Recorded != "":
		d.note(stack, "%s moved: deploying %s instead of %s (an upgrade, with its checkpoint)",
			pin.Image, images.Digest(pin.Pinned), images.Digest(pin.Recorded))
	case images.Digest(pin.Image) == "":
		d.note(stack, "%s pinned to %s: every host of this stack runs that digest until an up deploys another image or follows the tag (--refresh-image)",
			pin.Image, images.Digest(pin.Pinned))
	}
}

// imageChange is what a preview says of the image: the tag moved since it was pinned (and
// whether this preview follows it), or nothing.
func imageChange(pin *imagePin, refresh bool) *preview.ImageChange {
	if pin == nil || pin.Recorded == "" || pin.Latest == "" || pin.Latest == pin.Recorded {
		return nil
	}
	return &preview.ImageChange{Image: pin.Image, Recorded: images.Digest(pin.Recorded), Latest: images.Digest(pin.Latest), Followed: refresh}
}

// previewImage is pinImage for a preview of config: an image that cannot be resolved fails the
// preview unless the stack has it pinned already, when not knowing whether its tag moved is a
// warning.
func (d *Driver) previewImage(ctx context.Context, stack string, config auto.ConfigMap, opts *UpOptions) (*imagePin, error) {
	if config == nil {
		return nil, nil
	}
	pin, err := d.pinImage(ctx, config, opts.RefreshImage, true, "")
	if err != nil && pin == nil {
		return nil, err
	}
	if err != nil {
		d.emit(stack, Event{Type: EventDiagnostic, Severity: "warning", Message: err.Error()})
	}
	return pin, nil
}
