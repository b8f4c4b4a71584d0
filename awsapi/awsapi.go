// Package awsapi holds the two things every AWS caller of clawdeploy needs: the configuration to
// call with, and how to tell an API's own "does not exist" from any other failure.
package awsapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go"
)

// Config is given when it is not nil, else the default AWS configuration (environment, shared
// files, instance role, AWS_ENDPOINT_URL*); either way in region when it is not empty: the
// stack's, or the one an operator named.
func Config(ctx context.Context, given *aws.Config, region string) (aws.Config, error) {
	var cfg aws.Config
	if given != nil {
		cfg = *given
	} else {
		var err error
		if cfg, err = config.LoadDefaultConfig(ctx); err != nil {
			return aws.Config{}, fmt.Errorf("loading the AWS configuration: %w", err)
		}
	}
	if region != "" {
		cfg.Region = region
	}
	return cfg, nil
}

// NotFound reports whether err is the API's own "does not exist", by code: only that proves a
// resource absent.
func NotFound(err error, codes ...string) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	for _, c := range codes {
		if api.ErrorCode() == c {
			return true
		}
	}
	return false
}
