package infra

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Program is the Pulumi program of an OpenClaw deployment. It validates the configuration first, so
// a bad value fails the preview before anything is registered.
func Program(ctx *pulumi.Context) error {
	cfg, err := Load(ctx)
	if err != nil {
		return err
	}
	ctx.Export("region", pulumi.String(cfg.Region))
	ctx.Export("availabilityZone", pulumi.String(cfg.AvailabilityZone))
	return nil
}
